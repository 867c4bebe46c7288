"""Static checks of the image and deployment files (no Docker daemon, no cluster).

Everything a deployment runs must exist: the CLI commands (argparse), the probe paths
(the contract), the RECORDER_* variables (Settings), the ports (one number, 8000, everywhere).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import kubernetes_validate
import pytest

from recorder_service.cli import build_parser
from recorder_service.settings import ConfigError, Settings, env_name, load_settings
from tests.support.paths import REPO_ROOT

ROOT = REPO_ROOT
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = DEPLOY / "docker-compose.yml"
YAMLLINT_CONFIG = ROOT / ".yamllint.yaml"
API_DOC = ROOT / "docs" / "api.md"  # the external contract, in the project's words

K8S_VERSION = "1.30.0"  # kubernetes-validate ships the schemas: validation is offline
APP_PORT = 8000
CLI_NAME = "recorder-service"
IMAGE_NAME = "recorder-service"  # compose tag and k8s image name share this prefix
OPTIONAL_K8S_FILES = {"worker-deployment.yaml"}  # present, deliberately not in kustomization

# types-PyYAML is not in the dev group; keep the untyped module behind typed functions.
_yaml = importlib.import_module("yaml")


def load_yaml_documents(text: str) -> list[dict[str, Any]]:
    docs = [d for d in _yaml.safe_load_all(text) if d is not None]
    assert all(isinstance(d, dict) for d in docs), "every YAML document must be a mapping"
    return cast(list[dict[str, Any]], docs)


def load_yaml(path: Path) -> dict[str, Any]:
    docs = load_yaml_documents(path.read_text())
    assert len(docs) == 1, f"{path.name}: expected one YAML document"
    return docs[0]


# --- the checkers -------------------------------------------------------------------


def check_cli_command(argv: Sequence[str]) -> None:
    """Fail unless argv is a `recorder-service ...` command line the real CLI accepts."""
    assert argv, "empty command"
    assert argv[0] == CLI_NAME, f"{list(argv)}: does not run {CLI_NAME}"
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            ns = build_parser().parse_args(list(argv[1:]))
    except SystemExit as exc:
        raise AssertionError(f"{list(argv)} rejected by the CLI: {err.getvalue().strip()}") from exc
    if ns.command == "serve":
        # A container must listen on all interfaces, on the port everything else names.
        assert ns.host == "0.0.0.0", f"{list(argv)}: serve must bind 0.0.0.0 in a container"
        assert ns.port == APP_PORT, f"{list(argv)}: serve must listen on {APP_PORT}"


def unknown_recorder_variables(names: Iterator[str] | Sequence[str]) -> list[str]:
    known = {env_name(field) for field in Settings.__struct_fields__}
    return sorted({n for n in names if n.startswith("RECORDER_") and n not in known})


def validate_k8s(doc: Mapping[str, Any]) -> None:
    try:
        kubernetes_validate.validate(dict(doc), K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        kind = doc.get("kind")
        raise AssertionError(f"{kind}: {exc.message} at {list(exc.absolute_path)}") from exc


def contract_paths() -> set[str]:
    """Paths the contract names as `METHOD /path` (docs/api.md)."""
    return set(re.findall(r"`(?:GET|HEAD|POST|PUT|DELETE) (/[^`\s?]*)", API_DOC.read_text()))


# --- Dockerfile parsing -------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    stage: int  # index of the FROM it belongs to
    keyword: str
    value: str


def dockerfile_instructions(text: str) -> list[Instruction]:
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # Docker drops comment lines, even inside a continuation
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "Dockerfile ends inside a line continuation"
    result: list[Instruction] = []
    stage = -1
    for line in logical:
        keyword, _, value = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        result.append(Instruction(stage, keyword, value.strip()))
    return result


def exec_form(value: str) -> list[str]:
    parsed = json.loads(value)  # shell form would hide the argv (and break signal handling)
    assert isinstance(parsed, list), f"not exec form: {value}"
    assert all(isinstance(p, str) for p in parsed)
    return cast(list[str], parsed)


def expand_args(value: str, args: Mapping[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), value)


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return dockerfile_instructions(DOCKERFILE.read_text())


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == last]


def only(instructions: list[Instruction], keyword: str) -> Instruction:
    found = [i for i in instructions if i.keyword == keyword]
    assert len(found) == 1, f"expected one {keyword}, found {len(found)}"
    return found[0]


def test_dockerfile_is_multi_stage_on_python_311_slim(dockerfile: list[Instruction]) -> None:
    args = dict(
        i.value.split("=", 1) for i in dockerfile if i.keyword == "ARG" and i.stage == -1 and "=" in i.value
    )
    froms = [i.value for i in dockerfile if i.keyword == "FROM"]
    assert len(froms) >= 2
    images = [expand_args(f.split()[0], args) for f in froms]
    assert images[-1] == "python:3.11-slim"
    runtime = final_stage(dockerfile)
    copies = [i.value for i in runtime if i.keyword == "COPY"]
    assert copies == ["--from=builder /opt/venv /opt/venv"], "runtime takes only the venv"
    runtime_runs = " ".join(i.value for i in runtime if i.keyword == "RUN")
    for tool in ("gcc", "build-essential", "pip install", "uv "):
        assert tool not in runtime_runs, f"{tool} must not be in the runtime image"


def test_dockerfile_installs_the_locked_project_and_its_migrations(dockerfile: list[Instruction]) -> None:
    builder = [i for i in dockerfile if 0 <= i.stage < max(x.stage for x in dockerfile)]
    args = dict(i.value.split("=", 1) for i in builder if i.keyword == "ARG" and "=" in i.value)
    runs = [expand_args(i.value, args) for i in builder if i.keyword == "RUN"]
    assert any(re.search(r"pip install .*\buv==\d+\.\d+\.\d+\b", r) for r in runs), "uv pinned, from PyPI"
    syncs = [r for r in runs if "uv sync" in r]
    assert syncs
    assert all({"--frozen", "--no-dev", "--no-editable"} <= set(r.split()) for r in syncs)
    # migrate.py looks for migrations/ inside the installed package first.
    assert any("copytree('migrations'" in r and "migrations_dir()" in r for r in runs)


def test_dockerfile_runtime_is_non_root_with_tini_and_runs_serve(dockerfile: list[Instruction]) -> None:
    runtime = final_stage(dockerfile)
    user = only(runtime, "USER").value.split(":")[0]
    assert user not in {"root", "0"}
    assert exec_form(only(runtime, "ENTRYPOINT").value)[0].endswith("tini")
    check_cli_command(exec_form(only(runtime, "CMD").value))
    assert only(runtime, "EXPOSE").value == str(APP_PORT)


def test_dockerfile_healthcheck_probes_healthz_with_python(dockerfile: list[Instruction]) -> None:
    value = only(final_stage(dockerfile), "HEALTHCHECK").value
    options, _, command = value.partition("CMD ")
    assert all(opt.startswith("--") for opt in options.split())
    argv = exec_form(command)
    assert argv[0] == "python"
    urls = re.findall(r"http://127\.0\.0\.1:(\d+)(/\w+)", " ".join(argv))
    assert urls == [(str(APP_PORT), "/healthz")]
    assert "/healthz" in contract_paths()


def test_dockerfile_env_names_known_settings(dockerfile: list[Instruction]) -> None:
    names = [
        part.split("=", 1)[0]
        for i in dockerfile
        if i.keyword == "ENV"
        for part in i.value.split()
        if "=" in part
    ]
    assert "RECORDER_DATABASE_URL" in names
    assert unknown_recorder_variables(names) == []


def _env(instructions: list[Instruction], stage: int) -> dict[str, str]:
    return dict(
        part.split("=", 1)
        for i in instructions
        if i.keyword == "ENV" and i.stage == stage
        for part in i.value.split()
        if "=" in part
    )


def test_the_bytecode_is_compiled_for_the_optimization_level_the_image_runs_at(
    dockerfile: list[Instruction],
) -> None:
    # Compiled for another level, every start of every process would compile every module
    # again (PYTHONDONTWRITEBYTECODE: never saved), and keep the compiler's garbage.
    last = max(i.stage for i in dockerfile)
    assert _env(dockerfile, last).get("PYTHONOPTIMIZE") == "2"
    assert _env(dockerfile, last).get("PYTHONDONTWRITEBYTECODE") == "1"
    builder = _env(dockerfile, 0)
    assert builder.get("PYTHONOPTIMIZE") == "2" and builder.get("UV_COMPILE_BYTECODE") == "0"
    runs = " ".join(i.value for i in dockerfile if i.keyword == "RUN" and i.stage == 0)
    assert re.search(r"-m compileall -q -j 0 -o 2 /opt/venv/lib/python3\.11/site-packages", runs)


def test_dockerignore_keeps_junk_out_but_not_what_the_image_copies(dockerfile: list[Instruction]) -> None:
    patterns = {
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "**/__pycache__", ".mypy_cache", ".pytest_cache", "*.db"} <= patterns
    sources = [
        src
        for i in dockerfile
        if i.keyword == "COPY" and not i.value.startswith("--from")
        for src in i.value.split()[:-1]
    ]
    assert sources
    for src in sources:
        assert src not in patterns, f"{src} is copied but excluded by .dockerignore"
        assert (ROOT / src).exists(), f"COPY source {src} does not exist"


def test_pyproject_installs_the_cli_entry_point() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts[CLI_NAME] == "recorder_service.cli:main"


# --- YAML lint ----------------------------------------------------------------------


def yaml_files() -> list[Path]:
    return sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml"), YAMLLINT_CONFIG])


def run_yamllint(paths: Sequence[Path]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "yamllint", "--strict", "-f", "parsable", "-c", str(YAMLLINT_CONFIG)]
    return subprocess.run([*cmd, *map(str, paths)], capture_output=True, text=True, check=False, timeout=60)


def test_all_deploy_yaml_passes_yamllint() -> None:
    files = yaml_files()
    assert len(files) >= 10
    result = run_yamllint(files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_yamllint_rejects_a_sloppy_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("---\nkey: 1\nkey: 2   \n")  # duplicate key, trailing spaces
    result = run_yamllint([bad])
    assert result.returncode != 0
    assert "key-duplicates" in result.stdout


# --- docker compose -----------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE)


def our_services(compose: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    services = cast(dict[str, dict[str, Any]], compose["services"])
    return {n: s for n, s in services.items() if str(s.get("image", "")).startswith(IMAGE_NAME)}


def environment_names(env: Mapping[str, Any] | Sequence[str] | None) -> list[str]:
    if env is None:
        return []
    if isinstance(env, Mapping):
        return [str(k) for k in env]
    return [item.split("=", 1)[0] for item in env]


def test_compose_runs_real_cli_commands(compose: dict[str, Any]) -> None:
    services = our_services(compose)
    assert {"recorder", "migrate", "worker"} <= set(services)
    for name, service in services.items():
        assert "build" in service, f"{name}: builds the local image rather than pulling it"
        assert service["build"]["context"] == ".."
        check_cli_command(service["command"])
    assert services["migrate"]["command"] == [CLI_NAME, "migrate"]
    assert services["worker"]["command"] == [CLI_NAME, "worker"]
    assert services["worker"].get("profiles"), "the worker is opt-in: serve runs the loops"


def test_compose_orders_startup_on_migration_and_healthy_backends(compose: dict[str, Any]) -> None:
    services = cast(dict[str, dict[str, Any]], compose["services"])
    app = services["recorder"]
    assert app["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert app["depends_on"]["createbuckets"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["postgres"]["image"].startswith("postgres:15")
    assert services["redis"]["image"].startswith("redis:7")
    assert services["minio"]["image"].startswith("minio/minio")
    assert services["createbuckets"]["image"].startswith("minio/mc")
    for backend in ("postgres", "redis"):
        assert services[backend]["healthcheck"]["test"], f"{backend} needs a healthcheck"
    assert f"127.0.0.1:{APP_PORT}:{APP_PORT}" in app["ports"]


def test_compose_publishes_ports_on_loopback_only(compose: dict[str, Any]) -> None:
    services = cast(dict[str, dict[str, Any]], compose["services"])
    published = [(name, port) for name, service in services.items() for port in service.get("ports", [])]
    assert published
    for name, port in published:
        assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_compose_ships_no_secret(compose: dict[str, Any]) -> None:
    env = our_services(compose)["recorder"]["environment"]
    for name in ("RECORDER_INTERNAL_API_KEY", "RECORDER_DAILY_WEBHOOK_SECRETS"):
        # ${NAME:?message}: compose refuses to start until the operator sets it.
        assert str(env[name]).startswith("${" + name + ":?"), name


# The compose-spec JSON schema as vendored (with its source and licence) by check-jsonschema, a
# development dependency: validation is offline. `docker compose config` needs an engine, and
# podman-compose's `config` only normalises the file (it passes a misspelt key through).
COMPOSE_SCHEMA = "vendor.compose-spec"


def run_compose_schema(path: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", COMPOSE_SCHEMA, str(path)]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60)


def test_compose_file_validates_against_the_compose_spec() -> None:
    result = run_compose_schema(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_schema_rejects_a_misspelt_key(tmp_path: Path) -> None:
    bad = tmp_path / "docker-compose.yml"
    bad.write_text(COMPOSE.read_text().replace("restart: unless-stopped", "restrat: unless-stopped", 1))
    result = run_compose_schema(bad)
    assert result.returncode != 0
    assert "restrat" in result.stdout


def test_compose_builds_this_dockerfile_and_publishes_the_ports_its_commands_listen_on(
    compose: dict[str, Any], dockerfile: list[Instruction]
) -> None:
    services = our_services(compose)
    exposed = int(only(final_stage(dockerfile), "EXPOSE").value)
    listening: dict[str, int] = {}
    for name, service in services.items():
        build = service["build"]
        assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
        args = build_parser().parse_args(service["command"][1:])
        container_ports = {int(str(p).rsplit(":", 1)[1]) for p in service.get("ports", [])}
        if args.command in ("serve", "simulate-daily"):
            assert container_ports == {args.port}, (
                f"{name}: publishes {container_ports}, listens on {args.port}"
            )
            listening[name] = args.port
        else:
            assert not container_ports, f"{name}: {args.command} listens on nothing"
    assert listening["recorder"] == exposed
    # The default Daily URL of the shared environment is the simulator service, on its port.
    default_daily = re.fullmatch(
        r"\$\{RECORDER_DAILY_API_URL:-(.+)\}", services["recorder"]["environment"]["RECORDER_DAILY_API_URL"]
    )
    assert default_daily is not None
    assert default_daily.group(1) == f"http://daily-sim:{listening['daily-sim']}/v1"


def test_compose_environment_uses_known_settings(compose: dict[str, Any]) -> None:
    names: list[str] = []
    for service in our_services(compose).values():
        names += environment_names(service.get("environment"))
    assert {"RECORDER_DATABASE_URL", "RECORDER_REDIS_URL", "RECORDER_S3_ENDPOINT_URL"} <= set(names)
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(names)
    assert unknown_recorder_variables(names) == []


# --- Kubernetes ---------------------------------------------------------------------


def k8s_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def k8s_documents() -> list[dict[str, Any]]:
    return [doc for path in k8s_files() for doc in load_yaml_documents(path.read_text())]


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in k8s_documents() if d["kind"] == kind]


def named(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in by_kind(kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name} not found"
    return found[0]


def pod_spec(doc: Mapping[str, Any]) -> dict[str, Any]:
    return cast(dict[str, Any], doc["spec"]["template"]["spec"])


def container_port(container: Mapping[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    matches = [p["containerPort"] for p in container.get("ports", []) if p.get("name") == port]
    assert len(matches) == 1, f"port name {port!r} not declared by the container"
    return cast(int, matches[0])


@pytest.mark.parametrize("path", k8s_files(), ids=lambda p: p.name)
def test_k8s_manifest_validates_against_the_schema(path: Path) -> None:
    docs = load_yaml_documents(path.read_text())
    assert docs
    for doc in docs:
        validate_k8s(doc)


def test_k8s_validation_rejects_a_misspelt_field() -> None:
    deployment = named("Deployment", "recorder-service")
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(AssertionError, match="replica"):
        validate_k8s(broken)


def test_kustomization_lists_the_manifests() -> None:
    kustomization = load_yaml(K8S / "kustomization.yaml")
    listed = set(kustomization["resources"])
    present = {p.name for p in k8s_files()}
    assert listed <= present
    assert present - listed == OPTIONAL_K8S_FILES


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_kustomize_renders_valid_manifests() -> None:
    kubectl = cast(str, shutil.which("kubectl"))
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    rendered = load_yaml_documents(result.stdout)
    assert {d["kind"] for d in rendered} >= {"Deployment", "Service", "Job", "ConfigMap", "Secret"}
    for doc in rendered:
        validate_k8s(doc)


def test_k8s_containers_run_real_cli_commands() -> None:
    workloads = [*by_kind("Deployment"), *by_kind("Job")]
    assert len(workloads) >= 2
    for workload in workloads:
        for container in pod_spec(workload)["containers"]:
            assert container["image"].startswith(IMAGE_NAME)
            # `args` keeps the image's ENTRYPOINT (tini) as PID 1.
            assert "command" not in container, "override args, not the tini entrypoint"
            check_cli_command(container["args"])
    job = named("Job", "recorder-service-migrate")
    assert pod_spec(job)["containers"][0]["args"] == [CLI_NAME, "migrate"]
    assert job["spec"]["backoffLimit"] >= 1
    assert job["spec"]["ttlSecondsAfterFinished"] > 0


def test_k8s_api_probes_and_ports_agree_with_image_and_contract() -> None:
    deployment = named("Deployment", "recorder-service")
    assert deployment["spec"]["replicas"] >= 2
    (container,) = pod_spec(deployment)["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == APP_PORT
    config_map = named("ConfigMap", "recorder-service-config")
    assert ports["metrics"] == int(config_map["data"]["RECORDER_METRICS_PORT"])
    assert set(ports) == {"http", "metrics"}
    probes = {kind: container[kind]["httpGet"] for kind in ("readinessProbe", "livenessProbe")}
    assert probes["readinessProbe"]["path"] == "/readyz"
    assert probes["livenessProbe"]["path"] == "/healthz"
    if "startupProbe" in container:
        probes["startupProbe"] = container["startupProbe"]["httpGet"]
    for probe in probes.values():
        assert container_port(container, probe["port"]) == APP_PORT
        assert probe["path"] in contract_paths()
    service = named("Service", "recorder-service")
    assert service["spec"]["type"] == "ClusterIP"
    (port,) = service["spec"]["ports"]
    assert port["port"] == 80
    assert container_port(container, port["targetPort"]) == APP_PORT
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()


def test_k8s_api_drains_and_runs_locked_down() -> None:
    deployment = named("Deployment", "recorder-service")
    spec = pod_spec(deployment)
    (container,) = spec["containers"]
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert 0 < int(pre_stop[1]) < spec["terminationGracePeriodSeconds"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
    assert len(tmp) == 1
    assert "emptyDir" in volumes[tmp[0]["name"]]


def test_k8s_scaling_objects_target_the_api() -> None:
    deployment = named("Deployment", "recorder-service")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    hpa = named("HorizontalPodAutoscaler", "recorder-service")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] >= 2
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    pdb = named("PodDisruptionBudget", "recorder-service")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


@pytest.mark.parametrize(
    "variable",
    [
        "RECORDER_DATABASE_URL",
        "RECORDER_REDIS_URL",
        "RECORDER_DAILY_API_KEY",
        "RECORDER_DAILY_WEBHOOK_SECRETS",
        "RECORDER_INTERNAL_API_KEY",
        "RECORDER_CALLBACK_SECRET",
    ],
)
def test_k8s_secret_template_placeholders_are_refused_by_the_service(variable: str) -> None:
    config = named("ConfigMap", "recorder-service-config")["data"]
    template = named("Secret", "recorder-service-secrets")["stringData"]
    env = {k: str(v) for k, v in config.items()} | {
        "RECORDER_DAILY_API_KEY": "3f9c1a7e5b2d4c6a8e0f1b3d5c7a9e2f"
    }
    with pytest.raises(ConfigError, match=variable):
        load_settings(env | {variable: template[variable]})


def test_k8s_ingress_exposes_only_the_public_routes_and_the_webhook() -> None:
    ingress = named("Ingress", "recorder-service")
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/use-regex"] == "true"
    paths = [p for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    for path in paths:
        assert path["backend"]["service"] == {"name": "recorder-service", "port": {"name": "http"}}
    patterns = [re.compile("^" + p["path"]) for p in paths]

    def exposed(path: str) -> bool:
        return any(pattern.match(path) for pattern in patterns)

    meeting = "5b0b5d1c-2a33-4b7e-9d1e-0f0c7a1b2c3d"
    for public in (
        f"/v1/meetings/{meeting}/recordings/start",
        f"/v1/meetings/{meeting}/cloud-recording",
        "/v1/daily/webhook",
    ):
        assert exposed(public), public
    for internal in (
        f"/v1/meetings/{meeting}",
        f"/v1/meetings/{meeting}/recordings",
        f"/v1/meetings/{meeting}/cloud-recording/link",
        "/v1/recordings/availability",
        "/v1/daily/events",
        "/v1/callbacks",
        "/metrics",
        "/healthz",
        "/readyz",
        "/schema/openapi.json",
    ):
        assert not exposed(internal), internal


def test_k8s_network_policy_admits_the_api_port_and_the_metrics_port_only() -> None:
    policy = named("NetworkPolicy", "recorder-service")
    deployment = named("Deployment", "recorder-service")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    ports = {port["port"] for rule in policy["spec"]["ingress"] for port in rule["ports"]}
    assert ports == {"http", "metrics"}


def test_k8s_environment_comes_from_configmap_and_secret_with_known_names() -> None:
    config_map = named("ConfigMap", "recorder-service-config")
    secret = named("Secret", "recorder-service-secrets")
    secret_keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
    assert {
        "RECORDER_DAILY_API_KEY",
        "RECORDER_DAILY_WEBHOOK_SECRETS",
        "RECORDER_INTERNAL_API_KEY",
        "RECORDER_PLAYBACK_SECRET",
        "RECORDER_CALLBACK_SECRET",
        "RECORDER_DATABASE_URL",
        "RECORDER_REDIS_URL",
    } <= secret_keys
    assert not secret_keys & set(config_map["data"]), "a setting is defined twice"
    names = [*config_map["data"], *secret_keys]
    for workload in [*by_kind("Deployment"), *by_kind("Job")]:
        for container in pod_spec(workload)["containers"]:
            refs = container["envFrom"]
            assert {"configMapRef": {"name": "recorder-service-config"}} in refs
            assert {"secretRef": {"name": "recorder-service-secrets"}} in refs
            names += environment_names([e["name"] for e in container.get("env", [])])
    assert unknown_recorder_variables(names) == []


# --- the checkers can fail ----------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["recorder-service", "wroker"],
        ["recorder-service", "serve", "--prot", "8000"],
        ["recorder-service", "serve", "--host", "0.0.0.0", "--port", "8080"],
        ["recorder-service", "serve"],  # binds 127.0.0.1: unreachable in a container
        ["recorder-service", "daily", "webhook", "ensure"],  # --url is required
        ["uvicorn", "recorder_service.app:app"],
        [],
    ],
)
def test_cli_checker_rejects_bad_commands(argv: list[str]) -> None:
    with pytest.raises(AssertionError):
        check_cli_command(argv)


def test_env_checker_flags_typos() -> None:
    names = ["RECORDER_DATABSE_URL", "RECORDER_DATABASE_URL", "AWS_REGION"]
    assert unknown_recorder_variables(names) == ["RECORDER_DATABSE_URL"]
