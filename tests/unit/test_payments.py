import pytest

from domain import payments
from domain.errors import InvalidRequest, PaymentDeclined
from domain.payments import ACCEPT, DECLINE, ChargeOutcome, raise_for

# Imported through the module: a bare `test_outcome` name would be collected as a test.
outcome_of = payments.test_outcome


def test_tok_visa_is_charged():
    assert outcome_of(ACCEPT) is ChargeOutcome.CHARGED
    assert ACCEPT == "tok_visa"


def test_tok_charge_declined_is_declined():
    assert outcome_of(DECLINE) is ChargeOutcome.DECLINED
    assert DECLINE == "tok_chargeDeclined"


@pytest.mark.parametrize("token", ["", "tok_mastercard", "TOK_VISA", "tok_visa ", "tok_chargedeclined"])
def test_any_other_payment_token_is_an_invalid_request(token):
    with pytest.raises(InvalidRequest):
        outcome_of(token)


def test_a_declined_outcome_raises_payment_declined():
    with pytest.raises(PaymentDeclined):
        raise_for(ChargeOutcome.DECLINED)


def test_a_charged_outcome_raises_nothing():
    raise_for(ChargeOutcome.CHARGED)


def test_each_card_has_its_own_fingerprint_and_tok_visa_2_is_a_second_card():
    fingerprint_of = payments.test_fingerprint
    assert fingerprint_of("tok_visa") == fingerprint_of("tok_visa") == "fp_visa"
    assert fingerprint_of("tok_visa_2") == "fp_visa_2" != fingerprint_of("tok_visa")
    assert fingerprint_of("tok_chargeDeclined") == "fp_declined"
    assert outcome_of("tok_visa_2") is outcome_of("tok_visa_fan-17") is ChargeOutcome.CHARGED


@pytest.mark.parametrize("token", ["tok_visa_", "tok_visa_a b", "tok_visa_" + "x" * 65, "tok_visa2"])
def test_a_malformed_card_name_is_an_invalid_request(token):
    with pytest.raises(InvalidRequest):
        payments.test_fingerprint(token)
    with pytest.raises(InvalidRequest):
        outcome_of(token)
