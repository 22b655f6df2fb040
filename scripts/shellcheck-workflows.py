#!/usr/bin/env python3
"""shellcheck every `run:` script of action.yml and the workflows, and scripts/*.sh.

GitHub runs a `run:` script with `bash -e {0}` (with `shell: bash`, also
`-o pipefail`); `${{ ... }}` expressions are replaced by a quoted variable
before the check (what they expand to is the workflow's business, and
tests/security.rs checks that untrusted ones never appear in a script).
Prints each finding with the file and step it comes from; exits 1 on any.
"""

import pathlib
import re
import subprocess
import sys
import tempfile

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXPR = re.compile(r"\$\{\{.*?\}\}")


def scripts(path):
    """(step name, script) of every bash `run:` in a workflow or an action."""
    doc = yaml.safe_load(path.read_text())
    jobs = (doc.get("jobs") or {}).values() if "jobs" in doc else [doc.get("runs") or {}]
    for job in jobs:
        default = ((job.get("defaults") or {}).get("run") or {}).get("shell", "bash")
        for i, step in enumerate(job.get("steps") or []):
            if "run" in step and step.get("shell", default) == "bash":
                yield step.get("name", f"step {i + 1}"), step["run"]


def check(label, text, args):
    with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as f:
        f.write(text)
    out = subprocess.run(["shellcheck", *args, f.name], capture_output=True, text=True)
    pathlib.Path(f.name).unlink()
    if out.returncode != 0:
        print(f"--- {label}\n" + out.stdout.replace(f.name, label), end="")
        return 1
    return 0


def main():
    files = [ROOT / "action.yml"]
    for folder in (".github/workflows", "examples/workflows"):
        files += sorted((ROOT / folder).glob("*.yml"))
    failed = checked = 0
    for path in files:
        for name, script in scripts(path):
            body = EXPR.sub('"${GITHUB_EXPRESSION}"', script)
            label = f"{path.relative_to(ROOT)}: {name}"
            failed += check(label, "#!/usr/bin/env bash\nset -eo pipefail\n" + body, ["-s", "bash"])
            checked += 1
    for script in sorted((ROOT / "scripts").glob("*.sh")):
        failed += check(str(script.relative_to(ROOT)), script.read_text(), ["-x"])
        checked += 1
    print(f"shellcheck: {checked} scripts, {failed} with findings")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
