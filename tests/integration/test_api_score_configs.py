"""/api/public/score-configs on both stacks: shapes, validation per data type, PATCH, isolation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from conftest import create_project_key
from owlscope.app import create_app
from owlscope.storage.oltp.models import ScoreConfig

CONFIG_KEYS = {"id", "name", "createdAt", "updatedAt", "projectId", "dataType", "isArchived", "minValue",
               "maxValue", "categories", "description"}
PATH = "/api/public/score-configs"


@dataclass
class Api:
    client: TestClient
    services: Any
    a: tuple[str, str]
    b: tuple[str, str]
    project_a: str

    def post(self, body: Any, auth: tuple[str, str] | None = None) -> httpx.Response:
        # json.dumps, not httpx's json=: bodies may hold NaN, as some clients send it
        return self.client.post(PATH, content=json.dumps(body), auth=auth or self.a,
                                headers={"content-type": "application/json"})

    def patch(self, config_id: str, body: Any, auth: tuple[str, str] | None = None) -> httpx.Response:
        return self.client.patch(f"{PATH}/{config_id}", json=body, auth=auth or self.a)


@pytest.fixture
def api(stack: str, make_settings) -> Iterator[Api]:
    app = create_app(make_settings(stack), run_worker=False)
    with TestClient(app) as client:
        a = create_project_key(app.state.services, project_name="a")
        b = create_project_key(app.state.services, project_name="b")
        yield Api(client, app.state.services, (a["public_key"], a["secret_key"]),
                  (b["public_key"], b["secret_key"]), a["project_id"])


def _ok(r: httpx.Response) -> dict:
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == CONFIG_KEYS
    return body


def _bad(r: httpx.Response, message: str) -> None:
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "InvalidRequestError"
    assert message in r.json()["message"], r.text


def test_create_each_data_type_and_read_back(api: Api) -> None:
    numeric = _ok(api.post({"name": "accuracy", "dataType": "NUMERIC", "minValue": 0, "maxValue": 1,
                            "description": "share of correct answers"}))
    assert numeric["projectId"] == api.project_a and numeric["isArchived"] is False
    assert (numeric["minValue"], numeric["maxValue"], numeric["categories"]) == (0, 1, None)
    assert numeric["description"] == "share of correct answers"
    assert numeric["createdAt"].endswith("Z") and numeric["updatedAt"].endswith("Z")

    cats = [{"label": "bad", "value": 0}, {"label": "ok", "value": 1}, {"label": "great", "value": 2}]
    categorical = _ok(api.post({"name": "Quality (human)", "dataType": "CATEGORICAL", "categories": cats}))
    assert categorical["categories"] == cats

    boolean = _ok(api.post({"name": "is_correct", "dataType": "BOOLEAN"}))
    assert boolean["categories"] == [{"label": "True", "value": 1}, {"label": "False", "value": 0}]
    text = _ok(api.post({"name": "feedback", "dataType": "TEXT"}))
    assert text["categories"] is None and text["minValue"] is None

    for created in (numeric, categorical, boolean, text):
        assert _ok(api.client.get(f"{PATH}/{created['id']}", auth=api.a)) == created

    listed = api.client.get(PATH, auth=api.a).json()
    assert listed["meta"] == {"page": 1, "limit": 50, "totalItems": 4, "totalPages": 1}
    assert [c["id"] for c in listed["data"]] == [text["id"], boolean["id"], categorical["id"], numeric["id"]]
    page2 = api.client.get(PATH, params={"page": 2, "limit": 3}, auth=api.a).json()
    assert [c["id"] for c in page2["data"]] == [numeric["id"]]
    assert page2["meta"] == {"page": 2, "limit": 3, "totalItems": 4, "totalPages": 2}


BAD_BODIES = [
    ({"dataType": "NUMERIC"}, "name"),
    ({"name": "x", "dataType": "PERCENT"}, "dataType"),
    ({"name": "", "dataType": "NUMERIC"}, "1 to 35 characters"),
    ({"name": "x" * 36, "dataType": "NUMERIC"}, "1 to 35 characters"),
    ({"name": "semi;colon", "dataType": "NUMERIC"}, "may contain only"),
    ({"name": "range", "dataType": "NUMERIC", "minValue": 5, "maxValue": 5}, "Maximum value must be greater"),
    ({"name": "range", "dataType": "NUMERIC", "categories": [{"label": "a", "value": 1}]}, "only allowed for CATEGORICAL"),
    ({"name": "c", "dataType": "CATEGORICAL"}, "at least one category"),
    ({"name": "c", "dataType": "CATEGORICAL", "categories": []}, "at least one category"),
    ({"name": "c", "dataType": "CATEGORICAL", "categories": [{"label": "a", "value": 1}, {"label": "a", "value": 2}]},
     "Duplicate category label"),
    ({"name": "c", "dataType": "CATEGORICAL", "categories": [{"label": "a", "value": 1}, {"label": "b", "value": 1}]},
     "Duplicate category value"),
    ({"name": "c", "dataType": "CATEGORICAL", "categories": [{"label": "", "value": 1}]}, "label value pairs"),
    ({"name": "c", "dataType": "CATEGORICAL", "categories": [{"label": "a", "value": "one"}]}, "label value pairs"),
    ({"name": "c", "dataType": "CATEGORICAL", "categories": [{"label": "a", "value": 1}], "minValue": 0},
     "only allowed for NUMERIC"),
    ({"name": "b", "dataType": "BOOLEAN", "categories": [{"label": "True", "value": 1}]}, "cannot be passed"),
    ({"name": "b", "dataType": "BOOLEAN", "maxValue": 1}, "only allowed for NUMERIC"),
    ({"name": "t", "dataType": "TEXT", "categories": [{"label": "a", "value": 1}]}, "only allowed for CATEGORICAL"),
    ({"name": "t", "dataType": "TEXT", "description": "nul\x00"}, "NUL"),
    ({"name": "n", "dataType": "NUMERIC", "maxValue": float("inf")}, "finite"),
]


def test_invalid_configs_are_400_and_write_nothing(api: Api) -> None:
    for body, message in BAD_BODIES:  # one app for all cases: building a stack is the slow part
        _bad(api.post(body), message)
    with api.services.sessions() as s:
        assert s.query(ScoreConfig).count() == 0


def test_patch_updates_only_the_fields_sent(api: Api) -> None:
    config = _ok(api.post({"name": "accuracy", "dataType": "NUMERIC", "minValue": 0, "maxValue": 1,
                           "description": "d"}))
    updated = _ok(api.patch(config["id"], {"isArchived": True, "maxValue": 10}))
    assert updated["isArchived"] is True and updated["maxValue"] == 10
    assert (updated["name"], updated["minValue"], updated["description"]) == ("accuracy", 0, "d")
    assert updated["createdAt"] == config["createdAt"] and updated["updatedAt"] >= config["updatedAt"]
    assert _ok(api.client.get(f"{PATH}/{config['id']}", auth=api.a)) == updated

    renamed = _ok(api.patch(config["id"], {"name": "accuracy v2", "minValue": None, "description": None}))
    assert (renamed["name"], renamed["minValue"], renamed["description"]) == ("accuracy v2", None, None)
    _bad(api.patch(config["id"], {"minValue": 20}), "Maximum value must be greater")
    _bad(api.patch(config["id"], {"categories": [{"label": "a", "value": 1}]}), "only allowed for CATEGORICAL")
    _bad(api.patch(config["id"], {}), "cannot be empty")
    _bad(api.patch(config["id"], {"dataType": "TEXT"}), "dataType")
    _bad(api.patch(config["id"], {"name": "bad/name"}), "may contain only")
    # nothing of the rejected updates was applied
    assert _ok(api.client.get(f"{PATH}/{config['id']}", auth=api.a)) == renamed


def test_patch_categorical_and_boolean(api: Api) -> None:
    cat = _ok(api.post({"name": "q", "dataType": "CATEGORICAL",
                        "categories": [{"label": "a", "value": 0}, {"label": "b", "value": 1}]}))
    new = [{"label": "a", "value": 0}, {"label": "b", "value": 1}, {"label": "c", "value": 2}]
    assert _ok(api.patch(cat["id"], {"categories": new}))["categories"] == new
    _bad(api.patch(cat["id"], {"categories": []}), "at least one category")
    _bad(api.patch(cat["id"], {"categories": [{"label": "x", "value": 1}, {"label": "y", "value": 1}]}),
         "Duplicate category value")
    _bad(api.patch(cat["id"], {"maxValue": 3}), "only allowed for NUMERIC")

    boolean = _ok(api.post({"name": "ok", "dataType": "BOOLEAN"}))
    archived = _ok(api.patch(boolean["id"], {"isArchived": True, "description": "archived"}))
    assert archived["categories"] == [{"label": "True", "value": 1}, {"label": "False", "value": 0}]
    _bad(api.patch(boolean["id"], {"categories": [{"label": "Yes", "value": 1}]}), "cannot be passed")


def test_missing_and_foreign_configs_are_404(api: Api) -> None:
    config = _ok(api.post({"name": "accuracy", "dataType": "NUMERIC"}))
    for r in (api.client.get(f"{PATH}/nope", auth=api.a),
              api.client.get(f"{PATH}/{config['id']}", auth=api.b),
              api.patch(config["id"], {"isArchived": True}, auth=api.b)):
        assert r.status_code == 404 and r.json()["error"] == "LangfuseNotFoundError"
    assert api.client.get(PATH, auth=api.b).json()["meta"]["totalItems"] == 0
    assert _ok(api.client.get(f"{PATH}/{config['id']}", auth=api.a))["isArchived"] is False


@pytest.mark.parametrize("stack", ["embedded"])
def test_bad_requests(api: Api) -> None:
    assert api.client.get(PATH).status_code == 401
    r = api.client.post(PATH, content=b"[1, 2", auth=api.a, headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "InvalidRequestError"
    _bad(api.post([{"name": "x", "dataType": "NUMERIC"}]), "")
    for params in ({"limit": 0}, {"limit": 1000}, {"page": -1}):
        assert api.client.get(PATH, params=params, auth=api.a).status_code == 400
