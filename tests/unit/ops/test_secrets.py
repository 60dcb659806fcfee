"""Redaction of the credential forms a scenario can carry."""
import pytest

from harness.ops.secrets import redact, redact_text


@pytest.mark.parametrize("text, hidden", [
    ("https://ops:pw1@hooks.example/x", "pw1"),
    ("http://h/x?token=tk2&a=1", "tk2"),
    ("Authorization: Bearer ab3", "ab3"),
    ("host=a,b port=1,2 password=s3cret user=x", "s3cret"),      # a libpq dsn
    ("host=a password='with space4' user=x", "with space4"),      # quoted libpq value
    ("postgresql://u:pw5@db/x", "pw5"),
])
def test_credentials_are_masked(text, hidden):
    out = redact_text(text)
    assert hidden not in out and "***" in out


def test_words_that_only_contain_password_are_kept():
    assert redact_text("mypassword=visible") == "mypassword=visible"


def test_fields_named_like_secrets():
    assert redact({"api_key": "k", "dsn": "host=a password=p"}) == \
        {"api_key": "***", "dsn": "host=a password=***"}
