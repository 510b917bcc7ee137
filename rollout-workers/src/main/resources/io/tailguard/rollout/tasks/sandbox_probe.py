# Lists the files the interpreter running this needs, for the sandbox's private root: the
# executable, its standard library directory and every shared library that they and the standard
# library's extension modules load (as ldd resolves them), with the symbolic links on the way.
import glob, json, os, subprocess, sys, sysconfig

links = {}


def real(path):
    """Resolves path one component at a time, recording each symbolic link met."""
    parts, cur, hops = path.strip("/").split("/"), "/", 0
    while parts:
        nxt = os.path.join(cur, parts.pop(0))
        if os.path.islink(nxt):
            target = os.readlink(nxt)
            links[nxt] = target
            base = target if target.startswith("/") else os.path.join(cur, target)
            parts = os.path.normpath(base).strip("/").split("/") + parts
            cur, hops = "/", hops + 1
            if hops > 40:
                raise OSError("too many links: " + path)
        else:
            cur = nxt
    return cur


exe = real(sys.executable)
stdlib = real(sysconfig.get_paths()["stdlib"])
platlib = real(sysconfig.get_paths()["platstdlib"])
dirs = sorted({stdlib, platlib})
dirs = [d for d in dirs if not any(d != o and d.startswith(o + "/") for o in dirs)]
objects = [exe] + sorted(glob.glob(os.path.join(platlib, "lib-dynload", "*.so")))
out = subprocess.run(["ldd"] + objects, capture_output=True, text=True, check=True).stdout
files = {exe}
for line in out.splitlines():
    line = line.strip()
    if line.endswith(":"):             # ldd's header naming each object when given several
        continue
    path = line.split("=>", 1)[1].strip() if "=>" in line else line
    path = path.split(" (", 1)[0].strip()
    if path.startswith("/"):
        files.add(real(path))
libdirs = sorted({os.path.dirname(f) for f in files if f != exe})
print(json.dumps({"python": exe, "dirs": dirs,
                  "files": sorted(f for f in files if not any(f.startswith(d + "/") for d in dirs)),
                  "links": sorted([k, v] for k, v in links.items()),
                  "library_path": ":".join(libdirs)}))
