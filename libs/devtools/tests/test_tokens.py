"""`make token` prints a token the services accept, and says what is missing when it cannot."""

from __future__ import annotations

import pytest

from shop_common.auth import Principal, TokenVerifier
from shop_dev.tokens import main
from tests.support import unconnected_settings

SECRET = "devtools-test-secret-0123456789abcdef"


@pytest.fixture(autouse=True)
def no_jwt_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("JWT_SECRET", "JWT_ISSUER", "JWT_AUDIENCE"):
        monkeypatch.delenv(name, raising=False)


async def test_prints_a_token_the_default_settings_accept(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JWT_SECRET", SECRET)

    main(["--sub", "bob", "--role", "admin"])

    token = capsys.readouterr().out.strip()
    settings = unconnected_settings(SECRET)
    assert await TokenVerifier(settings).verify(token) == Principal(
        subject="bob", roles=frozenset({"admin"})
    )


def test_without_a_secret_it_says_what_to_set() -> None:
    with pytest.raises(SystemExit, match="set JWT_SECRET"):
        main([])
