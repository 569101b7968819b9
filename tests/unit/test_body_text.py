"""Write API bodies normalise text to NFC, except the fields compared as sent."""

from __future__ import annotations

import unicodedata

from commands.ordering.http.schemas import CartMerge, Checkout
from commands.users.http.schemas import Credentials, ProfileChanges, Registration

DECOMPOSED = "Zoe\u0301"  # "Zoé" typed as e + combining acute accent
COMPOSED = unicodedata.normalize("NFC", DECOMPOSED)


def test_text_fields_are_nfc_nested_lists_and_keys_too() -> None:
    assert COMPOSED != DECOMPOSED
    registration = Registration(email="zoe@example.com", password="pw", name=DECOMPOSED)
    assert registration.name == COMPOSED
    address = {"line1": DECOMPOSED, "city": "Lyon", "postal_code": "1", "country": "FR"}
    profile = ProfileChanges.model_validate({"addresses": [address]})
    assert profile.addresses is not None and profile.addresses[0].line1 == COMPOSED
    checkout = Checkout(shipping_address={DECOMPOSED: DECOMPOSED}, payment_method="pm_x")
    assert checkout.shipping_address == {COMPOSED: COMPOSED}


def test_secrets_and_tokens_are_kept_as_sent() -> None:
    assert Registration(email="z@example.com", password=DECOMPOSED, name="Z").password == DECOMPOSED
    assert Credentials(email="z@example.com", password=DECOMPOSED).password == DECOMPOSED
    assert CartMerge(cart_token=DECOMPOSED).cart_token == DECOMPOSED
