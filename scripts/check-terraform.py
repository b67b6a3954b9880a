#!/usr/bin/env python3
"""Static checks of terraform/ (providers cannot be downloaded here, so `terraform validate`
cannot run): every file parses as HCL (python-hcl2); in each module every `var.`, `local.`,
`module.<m>.<output>`, resource and data reference names something declared; every module call
passes only the module's variables and all of its required ones; and `terraform fmt -check`
passes when a terraform binary is on PATH.
"""

import os
import re
import shutil
import subprocess
import sys

import hcl2

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.join(REPO, "terraform")
failures = []


def unquote(name):
    return name.strip('"')


def load_module(path):
    """Declarations of one module directory, and its files' raw text."""
    decl = {"variables": {}, "outputs": set(), "locals": set(), "resources": set(),
            "data": set(), "modules": {}, "text": ""}
    for name in sorted(os.listdir(path)):
        if not name.endswith(".tf"):
            continue
        file = os.path.join(path, name)
        text = open(file).read()
        decl["text"] += text + "\n"
        try:
            parsed = hcl2.loads(text)
        except Exception as error:  # the parser raises several lark error types
            failures.append(f"{file}: does not parse: {error}")
            continue
        for block in parsed.get("variable", []):
            for var, body in block.items():
                if not var.startswith("__"):
                    decl["variables"][unquote(var)] = "default" in body
        for block in parsed.get("output", []):
            decl["outputs"] |= {unquote(o) for o in block if not o.startswith("__")}
        for block in parsed.get("locals", []):
            decl["locals"] |= {k for k in block if not k.startswith("__")}
        for block in parsed.get("resource", []):
            for rtype, named in block.items():
                decl["resources"] |= {f"{unquote(rtype)}.{unquote(n)}" for n in named
                                      if not n.startswith("__")}
        for block in parsed.get("data", []):
            for dtype, named in block.items():
                decl["data"] |= {f"{unquote(dtype)}.{unquote(n)}" for n in named
                                 if not n.startswith("__")}
        for block in parsed.get("module", []):
            for mod, body in block.items():
                if not mod.startswith("__"):
                    decl["modules"][unquote(mod)] = body
    return decl


def without_comments(text):
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def check(path, seen):
    path = os.path.normpath(path)
    if path in seen:
        return seen[path]
    decl = load_module(path)
    seen[path] = decl
    where = os.path.relpath(path, REPO)
    text = without_comments(decl["text"])
    for var in set(re.findall(r"\bvar\.([a-z0-9_]+)", text)) - set(decl["variables"]):
        failures.append(f"{where}: var.{var} is not declared")
    for local in set(re.findall(r"\blocal\.([a-z0-9_]+)", text)) - decl["locals"]:
        failures.append(f"{where}: local.{local} is not declared")
    for ref in set(re.findall(r"\b(aws_[a-z0-9_]+\.[a-z0-9_]+)\b", text)):
        if ref.split(".")[1] in ("id", "arn", "name"):
            continue
        # `data.aws_x.y` references and the resource type names in block headers
        if ref not in decl["resources"] and ref not in decl["data"]:
            if not re.search(r"data\." + re.escape(ref), text):
                failures.append(f"{where}: {ref} is not a resource of this module")
    for ref in set(re.findall(r"\bdata\.([a-z0-9_]+\.[a-z0-9_]+)", text)) - decl["data"]:
        failures.append(f"{where}: data.{ref} is not declared")
    for mod, body in decl["modules"].items():
        source = unquote(body.get("source", ""))
        if not source.startswith("./"):
            failures.append(f"{where}: module {mod} is not a local module")
            continue
        child = check(os.path.join(path, source), seen)
        args = {unquote(a) for a in body if not a.startswith("__")} - {"source", "depends_on", "providers", "count", "for_each"}
        for arg in args - set(child["variables"]):
            failures.append(f"{where}: module {mod} gets {arg}, which it does not declare")
        for var, has_default in child["variables"].items():
            if not has_default and var not in args:
                failures.append(f"{where}: module {mod} needs {var}")
    for mod, output in set(re.findall(r"\bmodule\.([a-z0-9_]+)\.([a-z0-9_]+)", text)):
        if mod not in decl["modules"]:
            failures.append(f"{where}: module.{mod} is not called")
            continue
        source = unquote(decl["modules"][mod]["source"])
        child = seen[os.path.normpath(os.path.join(path, source))]
        if output not in child["outputs"]:
            failures.append(f"{where}: module.{mod}.{output} is not an output of {mod}")
    return decl


def main():
    check(ROOT, {})
    terraform = shutil.which("terraform")
    if terraform:
        env = dict(os.environ, TF_CLI_CONFIG_FILE="/dev/null", CHECKPOINT_DISABLE="1")
        out = subprocess.run([terraform, "fmt", "-recursive", "-check", "-diff", ROOT],
                             capture_output=True, text=True, env=env)
        if out.returncode != 0:
            failures.append("terraform fmt -check:\n" + out.stdout + out.stderr)
    else:
        print("terraform not on PATH: fmt check skipped", file=sys.stderr)
    if failures:
        print("\n".join(["terraform check failed:"] + failures), file=sys.stderr)
        sys.exit(1)
    print("ok terraform: modules parse and their references resolve", file=sys.stderr)


if __name__ == "__main__":
    main()
