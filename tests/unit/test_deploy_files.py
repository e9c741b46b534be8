"""The deployment files cannot drift from the code: every environment variable that the compose
files and the Helm chart set is a real setting of owlscope/config.py, every setting a scale-out
installation needs is provided, and the chart refuses to render without its secrets.

Helm is not installed on the CI machine: the chart is checked by parsing its values and templates
(and, where a `helm` binary is on PATH, by `helm template` as well)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from owlscope.config import ConfigError, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose"
CHART = ROOT / "deploy" / "helm" / "owlscope"
SETTINGS = {f.alias for f in Settings.model_fields.values() if f.alias}
VAR = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?:(?P<op>:\?|:-)(?P<arg>[^}]*))?\}")

# What scale-out cannot run without. Proven below: with all of these the settings load in full
# scale-out mode; without any one of them loading fails or silently falls back to an embedded seam.
SCALE_OUT_REQUIRED = {
    "DATABASE_URL": "postgresql://owlscope:pw@postgres:5432/owlscope",
    "CLICKHOUSE_URL": "http://clickhouse:8123",
    "CLICKHOUSE_PASSWORD": "pw",
    "REDIS_URL": "redis://:pw@redis:6379/0",
    "S3_BUCKET": "owlscope",
    "S3_ACCESS_KEY_ID": "key",
    "S3_SECRET_ACCESS_KEY": "secret",
    "SALT": "salt",
    "SESSION_SECRET": "session",
    "ENCRYPTION_KEY": "ab" * 32,
}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env file
    monkeypatch.setenv("OWLSCOPE_DATA_DIR", str(tmp_path / "data"))
    return monkeypatch


def scale_out_shape(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> tuple | None:
    """Load settings from `env` alone; the seams it selects and whether its secrets are set, or None
    when it does not load."""
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        s = load_settings()
    except ConfigError:
        return None
    return (s.is_embedded, s.uses_chdb, bool(s.redis_url), s.blob_location.startswith("s3://"),
            bool(s.clickhouse_password), bool(s.s3_access_key_id and s.s3_secret_access_key),
            bool(s.encryption_key))


FULL = (False, False, True, True, True, True, True)


def test_the_required_list_is_what_scale_out_needs(clean_env: pytest.MonkeyPatch) -> None:
    assert scale_out_shape(SCALE_OUT_REQUIRED, clean_env) == FULL
    for name in SCALE_OUT_REQUIRED:
        rest = {k: v for k, v in SCALE_OUT_REQUIRED.items() if k != name}
        assert scale_out_shape(rest, clean_env) != FULL, f"{name} is not actually required"


def env_example() -> dict[str, str]:
    values = {}
    for line in (COMPOSE / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def fake_secret(name: str) -> str:
    return "cd" * 32 if name == "ENCRYPTION_KEY" else f"value-of-{name.lower()}"


def substitute(value: str, env: dict[str, str]) -> str:
    """Compose's variable substitution: ${X:?msg} fails when X is empty, ${X:-d} defaults."""
    def one(m: re.Match) -> str:
        got = env.get(m["name"], "")
        if m["op"] == ":?" and not got:
            raise LookupError(m["name"])
        return got or (m["arg"] if m["op"] == ":-" else "")
    return VAR.sub(one, value)


def owlscope_services(compose: dict) -> dict[str, dict]:
    return {name: svc for name, svc in compose["services"].items() if "OWLSCOPE_IMAGE" in svc.get("image", "")}


@pytest.mark.parametrize("filename", ["docker-compose.yml", "docker-compose.embedded.yml"])
def test_compose_sets_only_real_settings_and_lists_every_variable(filename: str) -> None:
    text = (COMPOSE / filename).read_text()
    compose = yaml.safe_load(text)
    services = owlscope_services(compose)
    assert services, "no service runs the owlscope image"
    for name, svc in services.items():
        unknown = set(svc["environment"]) - SETTINGS
        assert not unknown, f"{filename} {name} sets {unknown}, which owlscope/config.py does not read"
    template = env_example()
    referenced = {m["name"] for m in VAR.finditer(text)}
    assert referenced - set(template) == set(), "variables missing from .env.example"
    required = {m["name"] for m in VAR.finditer(text) if m["op"] == ":?"}
    for name in required:  # the template says which values must be filled in
        assert template[name] == "" or name == "MINIO_ROOT_USER", f"{name} has a default in .env.example"


def test_scale_out_compose_provides_every_required_setting(clean_env: pytest.MonkeyPatch) -> None:
    text = (COMPOSE / "docker-compose.yml").read_text()
    compose = yaml.safe_load(text)
    required = {m["name"] for m in VAR.finditer(text) if m["op"] == ":?"}
    env = {k: v or (fake_secret(k) if k in required else "") for k, v in env_example().items()}
    services = owlscope_services(compose)
    assert {s["command"][0] for s in services.values()} == {"migrate", "web", "worker"}
    assert compose["services"]["web"]["deploy"]["replicas"] == 2
    for name in ("postgres", "clickhouse", "redis", "minio"):
        assert compose["services"][name]["healthcheck"]["test"], name
        assert compose["services"][name].get("volumes"), name
    for name, svc in services.items():
        rendered = {k: substitute(str(v), env) for k, v in svc["environment"].items()}
        assert set(SCALE_OUT_REQUIRED) <= set(rendered), f"{name} misses {set(SCALE_OUT_REQUIRED) - set(rendered)}"
        assert scale_out_shape(rendered, clean_env) == FULL, name
        s = load_settings()
        assert s.redis_url.startswith("redis://:value-of-redis_password@redis")
    # compose refuses to start while a required secret is empty, and names it
    for name in ("SALT", "SESSION_SECRET", "ENCRYPTION_KEY", "POSTGRES_PASSWORD", "CLICKHOUSE_PASSWORD"):
        with pytest.raises(LookupError, match=name):
            for svc in services.values():
                for v in svc["environment"].values():
                    substitute(str(v), {**env, name: ""})


def test_embedded_compose_runs_serve_with_one_volume(clean_env: pytest.MonkeyPatch) -> None:
    compose = yaml.safe_load((COMPOSE / "docker-compose.embedded.yml").read_text())
    (svc,) = owlscope_services(compose).values()
    assert svc["command"] == ["serve"] and svc["volumes"] == ["owlscope-data:/data"]
    for k, v in svc["environment"].items():
        clean_env.setenv(k, substitute(str(v), {}))
    assert load_settings().is_embedded


# ---- Helm -------------------------------------------------------------------------------

def chart_env_names() -> set[str]:
    """Every environment variable the chart's pods get: ConfigMap and Secret keys, the values'
    `config` map, and env entries written in templates."""
    names = set(yaml.safe_load((CHART / "values.yaml").read_text())["config"])
    for tpl in ("configmap.yaml", "secret.yaml"):
        body = (CHART / "templates" / tpl).read_text().split("\ndata:", 1)[-1].split("stringData:", 1)[-1]
        names |= set(re.findall(r"^\s+([A-Z][A-Z0-9_]+):", body, re.M))
    for tpl in (CHART / "templates").glob("*.yaml"):
        names |= set(re.findall(r"-\s+name:\s+([A-Z][A-Z0-9_]+)\s*$", tpl.read_text(), re.M))
    return names


def test_chart_sets_only_real_settings_and_every_required_one() -> None:
    names = chart_env_names()
    assert not names - SETTINGS, f"the chart sets {names - SETTINGS}, which owlscope/config.py does not read"
    assert set(SCALE_OUT_REQUIRED) <= names, f"the chart never sets {set(SCALE_OUT_REQUIRED) - names}"


def test_chart_requires_every_secret_up_front() -> None:
    helpers = (CHART / "templates" / "_helpers.tpl").read_text()
    block = helpers.split('define "owlscope.validate"', 1)[1].split("{{- end -}}\n\n", 1)[0]
    checks = re.findall(r'\(not \.Values\.([\w.]+)\)\s*\}\}\{\{ \$missing = append \$missing "([\w.]+) \(([A-Z0-9_]+)\)', block)
    checks += re.findall(r'if not \.Values\.([\w.]+) \}\}\{\{ \$missing = append \$missing "([\w.]+) \(([A-Z0-9_]+)\)', block)
    covered = {env for _, _, env in checks}
    secret_keys = set(re.findall(r"^\s+([A-Z][A-Z0-9_]+):", (CHART / "templates" / "secret.yaml").read_text(), re.M))
    assert secret_keys <= covered, f"secrets rendered without a check: {secret_keys - covered}"
    assert {"ENCRYPTION_KEY", "SALT", "SESSION_SECRET", "DATABASE_URL", "CLICKHOUSE_PASSWORD"} <= covered
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for path, named, _ in checks:
        assert path == named, f"the message for {path} names {named}"
        node = values
        for part in path.split("."):
            node = node[part]
        assert node == "", f"{path} has a default; a required secret must be given"
    assert "fail (printf" in block and "join" in block  # all missing values are reported at once
    # every template renders through the secret, which runs the check first
    assert (CHART / "templates" / "secret.yaml").read_text().startswith('{{- include "owlscope.validate" . -}}')


def test_chart_has_the_parts_a_cluster_needs() -> None:
    tpl = {p.name: p.read_text() for p in (CHART / "templates").iterdir()}
    assert 'args: ["web"]' in tpl["web-deployment.yaml"] and 'args: ["worker"]' in tpl["worker-deployment.yaml"]
    for name in ("web-deployment.yaml", "worker-deployment.yaml"):
        assert "livenessProbe" in tpl[name] and "startupProbe" in tpl[name]
    assert "readinessProbe" in tpl["web-deployment.yaml"]
    assert "helm.sh/hook: {{ ternary" in tpl["migrate-job.yaml"] and "pre-upgrade" in tpl["migrate-job.yaml"]
    assert 'args: ["migrate"]' in tpl["migrate-job.yaml"]
    assert "HorizontalPodAutoscaler" in tpl["hpa.yaml"] and "PodDisruptionBudget" in tpl["pdb.yaml"]
    assert "kind: Ingress" in tpl["ingress.yaml"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert {d["name"] for d in chart["dependencies"]} == {"postgresql", "clickhouse", "redis", "minio"}
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(values["presets"]) == {"small", "medium", "large"}
    for preset in values["presets"].values():
        assert preset["web"]["resources"]["requests"] and preset["worker"]["threads"] >= 1


@pytest.mark.skipif(shutil.which("helm") is None, reason="helm is not installed on this machine")
def test_helm_template_refuses_without_secrets() -> None:
    r = subprocess.run(["helm", "template", "t", str(CHART), "--set", "postgresql.deploy=false,clickhouse.deploy=false,"
                        "redis.deploy=false,s3.deploy=false"], capture_output=True, text=True)
    assert r.returncode != 0
    for name in ("ENCRYPTION_KEY", "SALT", "SESSION_SECRET", "DATABASE_URL"):
        assert name in r.stderr
