"""Project-level roles from the project's Members page: raise, narrow, remove access, clear; who
may change what; and the new role applied on the next request."""

from __future__ import annotations

from integration.test_web_roles import Team, team  # noqa: F401  (the fixture: one user per org role)

from owlscope.storage.oltp.models import ProjectMembership, Role


def _set(t: Team, actor: str, target: str, role: str):
    with t.app.state.services.sessions() as s:
        from owlscope.storage.oltp.models import User

        user_id = s.query(User).filter_by(email=f"{target.lower()}@example.com").one().id
    return t.users[actor].post(f"/project/{t.project_id}/settings/members/{user_id}/role", {"role": role})


def test_members_page_lists_everyone_with_their_roles(team: Team) -> None:  # noqa: F811
    page = team.users["VIEWER"].get(f"/project/{team.project_id}/settings/members")
    assert page.status_code == 200
    for role in ("owner", "admin", "member", "viewer"):
        assert f"{role}@example.com" in page.text
    assert "outsider@example.com" not in page.text
    assert "project-role-" not in page.text  # a viewer sees roles but cannot change them
    admin_page = team.users["ADMIN"].get(f"/project/{team.project_id}/settings/members")
    assert "project-role-" in admin_page.text


def test_raise_narrow_and_remove_access_apply_at_once(team: Team) -> None:  # noqa: F811
    p = f"/project/{team.project_id}"
    viewer, admin = team.users["VIEWER"], team.users["ADMIN"]
    assert viewer.get(f"{p}/settings/api-keys").status_code == 403

    r = _set(team, "ADMIN", "VIEWER", "ADMIN")  # raised for this project
    assert r.status_code == 303
    assert viewer.get(f"{p}/settings/api-keys").status_code == 200
    assert viewer.post(f"{p}/settings/name", {"name": "Renamed by viewer"}).status_code == 303

    assert _set(team, "OWNER", "ADMIN", "VIEWER").status_code == 303  # narrowed for this project
    assert admin.get(f"{p}/settings/api-keys").status_code == 403
    assert admin.post(f"{p}/settings/name", {"name": "x"}).status_code == 403
    assert admin.get(f"/organization/{team.org_id}/settings/members").status_code == 200  # org role unchanged

    assert _set(team, "OWNER", "MEMBER", "NONE").status_code == 303  # no access to this project
    assert team.users["MEMBER"].get(p).status_code == 404

    assert _set(team, "OWNER", "MEMBER", "").status_code == 303  # back to the organization role
    assert team.users["MEMBER"].get(p).status_code == 200
    with team.app.state.services.sessions() as s:
        roles = sorted(r.role for r in s.query(ProjectMembership).filter_by(project_id=team.project_id))
    assert roles == sorted([Role.ADMIN, Role.VIEWER])


def test_who_may_change_project_roles(team: Team) -> None:  # noqa: F811
    assert _set(team, "MEMBER", "VIEWER", "ADMIN").status_code == 403  # members cannot
    r = _set(team, "ADMIN", "VIEWER", "OWNER")
    assert r.status_code == 403 and "Only an owner" in r.text
    assert _set(team, "ADMIN", "OWNER", "VIEWER").status_code == 403  # an admin cannot touch an owner
    r = _set(team, "ADMIN", "ADMIN", "OWNER")
    assert r.status_code == 403 and "your own project role" in r.text
    assert _set(team, "OWNER", "VIEWER", "BOSS").status_code == 400
    r = team.users["OWNER"].post(f"/project/{team.project_id}/settings/members/no-such-user/role", {"role": "VIEWER"})
    assert r.status_code == 404
    assert _set(team, "OWNER", "VIEWER", "OWNER").status_code == 303  # an owner can
    with team.app.state.services.sessions() as s:
        assert s.query(ProjectMembership).filter_by(role=Role.OWNER).count() == 1
