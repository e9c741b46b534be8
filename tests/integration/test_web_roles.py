"""Role enforcement on every UI page and action: VIEWER < MEMBER < ADMIN < OWNER; outsiders see 404."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from owlscope.accounts.orgs import role_at_least
from owlscope.app import create_app
from owlscope.auth.passwords import hash_password
from owlscope.storage.oltp.models import (
    Organization,
    OrganizationMembership,
    Project,
    ProjectMembership,
    Role,
    User,
)
from support.web import WebUser

ROLES = ("OWNER", "ADMIN", "MEMBER", "VIEWER")
_HASH = hash_password("correct-horse-battery")


@dataclass
class Team:
    app: Any
    org_id: str
    project_id: str
    users: dict[str, WebUser]


def _add_user(session, email: str) -> User:
    user = User(email=email, password_hash=_HASH)
    session.add(user)
    session.flush()
    return user


@pytest.fixture
def team(make_settings) -> Iterator[Team]:
    app = create_app(make_settings(), run_worker=False)
    with TestClient(app):
        with app.state.services.sessions() as s, s.begin():
            org = Organization(name="Quokka Org")
            s.add(org)
            s.flush()
            project = Project(org_id=org.id, name="Quokka Project")
            s.add(project)
            for role in ROLES:
                user = _add_user(s, f"{role.lower()}@example.com")
                s.add(OrganizationMembership(org_id=org.id, user_id=user.id, role=role))
            _add_user(s, "outsider@example.com")
            s.flush()
            org_id, project_id = org.id, project.id
        users = {}
        for name in (*ROLES, "OUTSIDER"):
            users[name] = WebUser(app)
            assert users[name].sign_in(f"{name.lower()}@example.com").status_code == 303
        yield Team(app, org_id, project_id, users)


def _pages(t: Team) -> list[tuple[str, str]]:
    p, o = f"/project/{t.project_id}", f"/organization/{t.org_id}"
    return [
        (p, "VIEWER"), (f"{p}/settings", "VIEWER"), (f"{p}/settings/api-keys", "ADMIN"),
        (f"{p}/settings/scores", "VIEWER"), (f"{p}/settings/scores/new", "MEMBER"), (f"{p}/traces", "VIEWER"),
        (f"{o}/settings", "VIEWER"), (f"{o}/settings/members", "VIEWER"),
        (f"{p}/settings/integrations", "MEMBER"), (f"{p}/traces/download", "VIEWER"),
        (f"{p}/scores/download", "VIEWER"),
        (f"{o}/settings/audit-log", "ADMIN"), (f"{o}/settings/audit-log.csv", "ADMIN"),
        (f"{p}/erase?kind=user&id=u-1", "ADMIN"), (f"{p}/erase?kind=session&id=s-1", "ADMIN"),
    ]


def _actions(t: Team, role: str) -> list[tuple[str, dict[str, str], str]]:
    p, o = f"/project/{t.project_id}", f"/organization/{t.org_id}"
    tag = role.lower()
    return [
        (f"{p}/environment", {"environment": "production", "next": p}, "VIEWER"),
        (f"{p}/settings/scores", {"name": f"cfg_{tag}", "data_type": "NUMERIC"}, "MEMBER"),
        (f"{p}/settings/api-keys", {"note": tag}, "ADMIN"),
        (f"{p}/settings/integrations/webhook", {"url": f"https://example.com/{tag}"}, "ADMIN"),
        (f"{p}/settings/name", {"name": f"Project {tag}"}, "ADMIN"),
        (f"{o}/settings/name", {"name": f"Org {tag}"}, "ADMIN"),
        (f"{o}/projects", {"name": f"project-{tag}"}, "ADMIN"),
        (f"{o}/members", {"email": f"new-{tag}@example.com", "role": "MEMBER"}, "ADMIN"),
        (f"{p}/erase", {"kind": "user", "id": f"u-{tag}", "confirm": f"u-{tag}"}, "ADMIN"),
        # A wrong confirmation: an owner gets past the role check and is told so (400).
        (f"{p}/settings/delete", {"confirm": "not the name"}, "OWNER"),
        (f"{p}/traces/delete", {}, "ADMIN"),  # nothing selected: 400 once past the role check
    ]


def test_role_matrix_for_pages_and_actions(team: Team) -> None:
    problems = []
    for role in ROLES:
        user = team.users[role]
        for path, minimum in _pages(team):
            status = user.get(path).status_code
            expected = 200 if role_at_least(role, minimum) else 403
            if status != expected:
                problems.append(f"{role} GET {path}: {status}, expected {expected}")
        for path, form, minimum in _actions(team, role):
            status = user.post(path, form).status_code
            allowed = role_at_least(role, minimum)
            ok = status in (200, 303, 400) if allowed else status == 403
            if path.endswith("/delete") and allowed:
                ok = status == 400
            if not ok:
                problems.append(f"{role} POST {path}: {status}, expected {'success' if allowed else 403}")
    assert not problems, "\n".join(problems)

    # What the allowed actions did, and that refused ones did nothing.
    with team.app.state.services.sessions() as s:
        assert s.get(Project, team.project_id).deleted_at is None
        assert s.get(Project, team.project_id).name in ("Project owner", "Project admin")
        names = {p.name for p in s.query(Project).filter_by(org_id=team.org_id)}
        assert {"project-owner", "project-admin"} <= names and "project-member" not in names
        emails = {u.email for u in s.query(User)}
        assert "new-admin@example.com" in emails and "new-member@example.com" not in emails


def test_the_navigation_lists_only_what_the_role_may_open(team: Team) -> None:
    p = f"/project/{team.project_id}"
    assert f'href="{p}/playground"' not in team.users["VIEWER"].get(f"{p}/traces").text
    assert team.users["VIEWER"].get(f"{p}/playground").status_code == 403
    assert f'href="{p}/playground"' in team.users["MEMBER"].get(f"{p}/traces").text


def test_outsiders_get_404_and_never_the_data(team: Team) -> None:
    outsider = team.users["OUTSIDER"]
    for path, _ in _pages(team):
        r = outsider.get(path)
        assert r.status_code == 404, path
        assert "Quokka" not in r.text and "owner@example.com" not in r.text
    for path, form, _ in _actions(team, "OUTSIDER"):
        assert outsider.post(path, form).status_code == 404, path
    with team.app.state.services.sessions() as s:
        assert s.get(Project, team.project_id).name == "Quokka Project"


def test_project_role_overrides_the_organization_role(team: Team) -> None:
    with team.app.state.services.sessions() as s, s.begin():
        ids = {u.email: u.id for u in s.query(User)}
        s.add(ProjectMembership(project_id=team.project_id, user_id=ids["member@example.com"], role=Role.NONE))
        s.add(ProjectMembership(project_id=team.project_id, user_id=ids["admin@example.com"], role=Role.VIEWER))
        s.add(ProjectMembership(project_id=team.project_id, user_id=ids["viewer@example.com"], role=Role.ADMIN))
    p = f"/project/{team.project_id}"
    assert team.users["MEMBER"].get(p).status_code == 404
    assert team.users["MEMBER"].get(f"/organization/{team.org_id}/settings").status_code == 200
    assert team.users["ADMIN"].get(f"{p}/settings/api-keys").status_code == 403
    assert team.users["VIEWER"].get(f"{p}/settings/api-keys").status_code == 200
    # The switcher lists only projects the user may open.
    assert f'href="/project/{team.project_id}"' not in team.users["MEMBER"].get(
        f"/organization/{team.org_id}/settings").text.split("</aside>")[0]


def test_deleted_projects_are_gone_for_everyone(team: Team) -> None:
    owner = team.users["OWNER"]
    r = owner.post(f"/project/{team.project_id}/settings/delete", {"confirm": "Quokka Project"})
    assert r.status_code == 303 and r.headers["location"] == "/"
    for role in ROLES:
        assert team.users[role].get(f"/project/{team.project_id}").status_code == 404
