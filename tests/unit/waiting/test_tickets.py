from domain.waiting.tickets import TicketState


def test_states_are_lowercase_strings():
    assert [str(s) for s in TicketState] == [
        "pre_queue", "waiting", "admitted", "sold_out", "expired"]
