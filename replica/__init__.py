"""What a Serve replica runs beside its HTTP routes (api/): its clients of the owners (the
booking client to seat blocks and event owners, the queue client to the waiting room) and
the key ring that signs and checks tokens. None of it is an actor: `actors/` hosts the
owners themselves."""
