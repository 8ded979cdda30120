#!/usr/bin/env python3
"""Every Python module any test, bench or script imports, and every program the tests
start, comes from a Debian package that scripts/deps.sh installs.

A missing python3-yaml once broke the test command on a fresh Debian 12 while every
test passed here, where the package happened to be installed. This test reads the
sources rather than trying imports, so it fails here too when deps.sh forgets one.
"""
import ast
import os
import re
import sys

SRC = os.environ.get("PP_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))

# Third-party import name -> the Debian package that provides it.
PY_PACKAGES = {
    "zmq": "python3-zmq",
    "msgpack": "python3-msgpack",
    "redis": "python3-redis",
    "paho": "python3-paho-mqtt",
    "yaml": "python3-yaml",
    "cryptography": "python3-cryptography",
}

# Programs the tests and scripts run -> the Debian package that provides them.
PROGRAMS = {
    "redis-server": "redis-server",
    "redis-cli": "redis-tools",
    "mosquitto": "mosquitto",
    "mosquitto_sub": "mosquitto-clients",
    "mosquitto_pub": "mosquitto-clients",
    "nats-server": "nats-server",
    "h2load": "nghttp2-client",
    "openssl": "openssl",
    "ip": "iproute2",
    "curl": "curl",
    "clang-format": "clang-format",
    "cmake": "cmake",
    "ctest": "cmake",
}


def deps_packages():
    text = open(os.path.join(SRC, "scripts", "deps.sh")).read()
    m = re.search(r"PKGS=\((.*?)\)", text, re.S)
    assert m, "scripts/deps.sh has no PKGS=( ... ) list"
    return set(m.group(1).split())


def repo_files(suffixes):
    for root, dirs, files in os.walk(SRC):
        dirs[:] = [d for d in dirs if not d.startswith(".") and not d.startswith("build")]
        for f in files:
            if f.endswith(suffixes):
                yield os.path.join(root, f)


def local_modules():
    return {os.path.splitext(os.path.basename(p))[0] for p in repo_files((".py",))} | {
        d for d in os.listdir(os.path.join(SRC, "clients", "python"))}


def imports_of(path):
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


def main():
    have = deps_packages()
    local = local_modules()
    errors = []
    seen = set()
    for path in repo_files((".py",)):
        for mod in sorted(set(imports_of(path))):
            if mod in sys.stdlib_module_names or mod in local:
                continue
            seen.add(mod)
            pkg = PY_PACKAGES.get(mod)
            rel = os.path.relpath(path, SRC)
            if pkg is None:
                errors.append(f"{rel}: imports '{mod}', which no Debian package in "
                              f"this test's table provides; add it here and to deps.sh")
            elif pkg not in have:
                errors.append(f"{rel}: imports '{mod}' but deps.sh does not install {pkg}")
    word = re.compile(r"(?<![\w./-])(%s)(?![\w-])" % "|".join(map(re.escape, PROGRAMS)))
    for path in repo_files((".py", ".sh")):
        if os.path.abspath(path) == os.path.abspath(__file__):
            continue
        text = open(path, encoding="utf-8").read()
        for m in set(word.findall(text)):
            if PROGRAMS[m] not in have:
                errors.append(f"{os.path.relpath(path, SRC)}: runs '{m}' but deps.sh "
                              f"does not install {PROGRAMS[m]}")
    for e in errors:
        print("deps:", e)
    print(f"deps: {len(seen)} third-party modules ({', '.join(sorted(seen))}), "
          f"{len(errors)} problems")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
