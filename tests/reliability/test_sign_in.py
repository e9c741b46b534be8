"""Sign-in under attack: guessing backs off per account and per address."""

from __future__ import annotations

from reliability.helpers import project_api
from support.web import PASSWORD, WebUser


def test_guessing_a_password_is_refused_even_with_the_right_one(server) -> None:
    srv = server(run_worker=False)
    project_api(srv, email="victim@example.com", password=PASSWORD)
    attacker = WebUser(srv.app)
    statuses = [attacker.sign_in("victim@example.com", f"guess-{i}").status_code for i in range(8)]
    assert statuses[:5] == [400] * 5  # the first failures are answered normally
    assert 429 in statuses[5:]
    refused = attacker.sign_in("victim@example.com", PASSWORD)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert "Too many failed sign-in attempts" in refused.text
    # another account is not locked by these failures
    project_api(srv, "other", email="other@example.com", password=PASSWORD)
    assert WebUser(srv.app).sign_in("other@example.com", PASSWORD).status_code == 303
