"""The password policy (length after NFKC, common, personal) and the argon2 hasher."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.accounts import email_key, normalise_email
from kiosk.codes import typed_code
from kiosk.errors import Problem, Refused
from kiosk.passwords import MAX_LENGTH, MIN_LENGTH, check_password, normalise
from tests.factories import fast_hasher

# Random letters and signs: neither common nor personal, whatever its length.
RANDOM = "qG7#vZ!pT2wMxK9@rN4$bL6%hJ8&cF3*dS5+eY1=uA0?"


def key(password: str, **kwargs) -> str | None:
    problem = check_password(password, **kwargs)
    return problem.key if problem else None


def random_password(length: int) -> str:
    return (RANDOM * 4)[:length]


def test_length_limits_are_12_and_128():
    assert (MIN_LENGTH, MAX_LENGTH) == (12, 128)
    assert key(random_password(11)) == "password.too_short"
    assert key(random_password(12)) is None
    assert key(random_password(128)) is None
    assert key(random_password(129)) == "password.too_long"


def test_a_long_password_is_refused_not_truncated():
    problem = check_password(random_password(129))
    assert problem == Problem("password.too_long", {"maximum": 128, "length": 129})
    hasher = fast_hasher()
    hashed = hasher.hash(random_password(128))
    assert not hasher.verify(hashed, random_password(127))


def test_length_is_counted_after_nfkc():
    ligature = random_password(10) + "ﬁ"  # 11 code points, "fi" after NFKC
    assert len(ligature) == 11 and len(normalise(ligature)) == 12
    assert key(ligature) is None
    too_long = random_password(127) + "ﬁ"  # 128 code points, 129 after NFKC
    assert key(too_long) == "password.too_long"
    assert check_password(too_long).params["length"] == 129


def test_fullwidth_letters_are_read_as_plain_letters():
    fullwidth = "ｐａｓｓｗｏｒｄ１２３４"  # "password1234" in fullwidth forms
    assert normalise(fullwidth) == "password1234"
    assert key(fullwidth) == "password.common"
    assert key("ＲＡＮＤＯＭ７＃ｖＺ！ｐ") is None


@pytest.mark.parametrize(
    "password",
    [
        "azertyuiop123",
        "password1234",
        "motdepasse2024!",
        "123456789012",
        "Azertyuiop123",
        "MotDePasse2024!",
        "aaaaaaaaaaaa",
    ],
)
def test_common_passwords_are_refused(password):
    assert key(password) == "password.common"


@pytest.mark.parametrize("password", ["839274615093", "2b7x9q4m8k3z"])
def test_uncommon_digit_strings_are_accepted(password):
    assert key(password) is None


NAMES = ("Martin-Lefèvre", "Élodie Anne")


@pytest.mark.parametrize(
    "password",
    [
        "martinlefevre2020",  # the family name, without its accent
        "j'aime le velo, lefevre",  # one part of a compound family name
        "elodie-aime-le-velo",  # the given name, accent-insensitive
        "ÉLODIE AIME LE VÉLO",
        "élodie aime le vélo",
        "zorglub.92 est mon pseudo",  # the e-mail's local part
    ],
)
def test_passwords_containing_a_name_or_the_address_are_refused(password):
    assert key(password, names=NAMES, email="zorglub.92@exemple.fr") == "password.personal"


def test_short_name_parts_and_the_domain_do_not_count():
    # "Anne" is long enough to count; "Li" (two letters) is not.
    assert key("li et ses quatre chats", names=("Li",), email="x@exemple.fr") is None
    assert key("anne et ses quatre chats", names=("Li Anne",)) == "password.personal"
    assert key("exemple de phrase longue", email="ab@exemple.fr") is None


def test_a_long_passphrase_is_accepted():
    assert (
        key("le chat de ma voisine mange des cerises", names=NAMES, email="e.martin75@exemple.fr")
        is None
    )


def test_hasher_verifies_and_asks_for_rehash():
    hasher = fast_hasher()
    hashed = hasher.hash("le chat de ma voisine")
    assert hashed.startswith("$argon2id$")
    assert hasher.verify(hashed, "le chat de ma voisine")
    assert not hasher.verify(hashed, "le chat de ma voisin")
    assert not hasher.verify("pas un hachage", "le chat de ma voisine")
    assert not hasher.needs_rehash(hashed)
    assert fast_hasher(time_cost=2).needs_rehash(hashed)
    assert fast_hasher(memory_cost=16).needs_rehash(hashed)


def test_hasher_compares_in_nfkc():
    hasher = fast_hasher()
    hashed = hasher.hash(unicodedata.normalize("NFC", "fenêtre ouverte"))
    assert hasher.verify(hashed, unicodedata.normalize("NFD", "fenêtre ouverte"))


# -- never raise anything but a refusal -------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    password=st.text(max_size=200),
    names=st.lists(st.text(max_size=30), max_size=3),
    email=st.text(max_size=60),
)
def test_check_password_never_raises(password, names, email):
    result = check_password(password, names=tuple(names), email=email)
    assert result is None or isinstance(result, Problem)


ADDRESS_LIKE = st.builds(
    lambda local, domain: f"{local}@{domain}",
    st.text(max_size=30),
    st.text(max_size=30) | st.from_regex(r"[a-zé0-9-]{1,20}\.(fr|com|xn--p1ai)", fullmatch=True),
)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=80) | ADDRESS_LIKE)
def test_address_validation_raises_only_refused(text):
    try:
        normalised = normalise_email(text)
    except Refused as refused:
        assert set(refused.problems) == {"email"}
        assert refused.problems["email"].key in ("email.required", "email.invalid")
        return
    assert isinstance(email_key(normalised), str)
    assert normalise_email(normalised) == normalised


@given(text=st.text(max_size=40))
def test_typed_code_never_raises(text):
    assert isinstance(typed_code(text), str)
