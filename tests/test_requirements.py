"""Every package AdGen's code imports is named in the requirements files a fresh machine installs from.

A package that happens to be installed here (by another project, or pulled in by one of ours) passes every other
test and then fails on a user's fresh install: openpyxl did exactly that (.xlsx sheets, and the tests making them).
"""
import ast
import importlib.metadata as metadata
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCAL = {"adgen", "app", "bench", "tests", "conftest"}
# Imported only where the platform provides it, inside `try: ... except ImportError` (app.on_gpu).
PLATFORM = {"spaces": "Hugging Face ZeroGPU Spaces install it themselves"}


def imported(paths: list[Path]) -> set[str]:
    names = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module.split(".")[0])
    local = LOCAL | {p.stem for p in (ROOT / "tests").glob("*.py")}
    return {n for n in names if n not in sys.stdlib_module_names and n not in local and n not in PLATFORM}


def listed(name: str) -> set[str]:
    """Distribution names (normalized) in a requirements file and the files it includes with -r."""
    names = set()
    for line in (ROOT / name).read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r "):
            names |= listed(line[3:].strip())
        elif line:
            names.add(normalize(re.split(r"[\[=<>~! ;]", line)[0]))
    return names


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# Modules whose distribution has another name, as requirements.txt names it (on another machine the module may come
# from a sibling build, opencv-python or onnxruntime-gpu, or not be installed at all: ray without its extra file).
DISTRIBUTION = {"PIL": "pillow", "yaml": "pyyaml", "cv2": "opencv-python-headless", "pynvml": "nvidia-ml-py",
                "pillow_heif": "pillow-heif", "gradio_client": "gradio-client"}


def unlisted(modules: set[str], requirements: set[str]) -> list[str]:
    """The modules no listed distribution provides: by the module's own name, its known distribution, or else the
    distribution that provides it here."""
    providers = metadata.packages_distributions()
    missing = []
    for module in sorted(modules):
        names = {normalize(module), normalize(DISTRIBUTION.get(module, module))}
        names |= {normalize(d) for d in providers.get(module, [])}
        if not names & requirements:
            missing.append(f"{module} (from {', '.join(sorted(providers.get(module, []))) or 'no installed package'})")
    return missing


def test_the_apps_imports_are_in_requirements():
    code = [ROOT / "app.py", *(ROOT / "adgen").rglob("*.py"), *(ROOT / "bench").rglob("*.py")]
    requirements = listed("requirements.txt") | listed("requirements-ray.txt")
    assert unlisted(imported(code), requirements) == []


def test_the_tests_imports_are_in_requirements_dev():
    code = [*(ROOT / "tests").rglob("*.py"), *(ROOT / "scripts").glob("*.py")]
    assert unlisted(imported(code), listed("requirements-dev.txt")) == []


def test_an_unlisted_import_is_found():
    # the check itself can fail: a module that only another package brings is reported, with that package's name
    assert unlisted({"yaml", "tqdm"}, {"pyyaml"}) == ["tqdm (from tqdm)"]
    assert unlisted({"cv2", "ray"}, {"opencv-python-headless", "ray"}) == []  # by the known name, installed or not
