"""Digest responses against the RFCs' own worked examples, and challenge parsing."""
import pytest

from harness.sip.digest import Challenge, DigestError, authorization, parse_challenge, response


def test_rfc_2617_example_md5_with_qop_auth():
    ch = Challenge(realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
                   qop=("auth",))
    assert response(ch, "Mufasa", "Circle Of Life", "GET", "/dir/index.html",
                    cnonce="0a4f113b", nc=1, qop="auth") == "6629fae49393a05397450978507c4ef1"


RFC7616 = dict(realm="http-auth@example.org",
               nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", qop=("auth", "auth-int"),
               opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS")
CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"


@pytest.mark.parametrize("algorithm, expected", [
    ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
    ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
])
def test_rfc_7616_section_3_9_1_examples(algorithm, expected):
    ch = Challenge(algorithm=algorithm, **RFC7616)
    assert response(ch, "Mufasa", "Circle of Life", "GET", "/dir/index.html", cnonce=CNONCE,
                    nc=1, qop="auth") == expected
    header = authorization(ch, "Mufasa", "Circle of Life", "GET", "/dir/index.html",
                           cnonce=CNONCE)
    assert f'response="{expected}"' in header and "nc=00000001" in header
    assert 'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"' in header


def test_a_challenge_is_parsed_with_quoted_and_bare_values():
    ch = parse_challenge('Digest realm="sbc.staging", nonce="a,b=c", qop="auth,auth-int", '
                         'algorithm=SHA-256, stale=TRUE, opaque="x"', proxy=True)
    assert (ch.realm, ch.nonce, ch.algorithm, ch.qop, ch.stale, ch.opaque, ch.proxy) == \
        ("sbc.staging", "a,b=c", "SHA-256", ("auth", "auth-int"), True, "x", True)
    no_qop = parse_challenge('Digest realm="r", nonce="n"')
    assert no_qop.algorithm == "MD5" and no_qop.qop == () and not no_qop.stale
    assert "qop" not in authorization(no_qop, "u", "p", "INVITE", "sip:a@b")
    with pytest.raises(DigestError):
        parse_challenge('Basic realm="r"')
    with pytest.raises(DigestError):
        authorization(Challenge("r", "n", algorithm="SHA-1"), "u", "p", "INVITE", "sip:a@b")


def test_a_server_checks_what_the_client_answered():
    """Both sides of the exchange: the sandbox SBC's check accepts the harness's answer to its
    own challenge, for each algorithm, and tells a wrong password from an unknown user."""
    from harness.sip.digest import challenge_header, check_credentials, parse_credentials
    for algorithm in ("MD5", "SHA-256", "SHA-512-256"):
        ch = parse_challenge(challenge_header("sbc", "n0nce", algorithm), proxy=True)
        value = authorization(ch, "drill", "s3cret", "INVITE", "sip:hotline@10.0.0.1:5060", nc=3)
        params = parse_credentials(value)
        assert params["nc"] == "00000003" and params["algorithm"] == algorithm
        assert check_credentials(params, "sbc", {"drill": "s3cret"}, "INVITE") == "ok"
        assert check_credentials(params, "sbc", {"drill": "other"}, "INVITE") == "wrong"
        assert check_credentials(params, "sbc", {"drill": "s3cret"}, "BYE") == "wrong"
        assert check_credentials(params, "sbc", {"someone": "s3cret"}, "INVITE") == "unknown"
        assert check_credentials(params, "elsewhere", {"drill": "s3cret"}, "INVITE") == "unknown"
    assert parse_credentials('Basic ZHJpbGw6eA==') == {}
    assert 'stale=true' in challenge_header("r", "n", stale=True)
