"""Pure domain core of the virtual waiting room.

Standard library only: no Ray, Redis, Kafka, HTTP or NTP imports, and no clock or randomness of
its own (callers pass `now_ms` and random bytes in), so every rule here is testable in
isolation and the actors that wire it to infrastructure stay thin.
"""
