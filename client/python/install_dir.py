"""Prints where Python packages go under PREFIX, relative to PREFIX, for
the interpreter that runs this (used by client/CMakeLists.txt).

usage: python3 install_dir.py PREFIX

Debian's python3 (it has the "deb_system" scheme) looks in
/usr/lib/python3/dist-packages for the prefix /usr and in
PREFIX/lib/python3.X/dist-packages for /usr/local; other Pythons use
their posix_prefix scheme (PREFIX/lib/python3.X/site-packages).
"""

import os
import sys
import sysconfig

prefix = os.path.abspath(sys.argv[1])
where = {"base": prefix, "platbase": prefix, "installed_base": prefix,
         "installed_platbase": prefix}
if "deb_system" in sysconfig.get_scheme_names():
    if prefix == "/usr":
        path = sysconfig.get_path("purelib", "deb_system", where)
    else:
        path = os.path.join(prefix, "lib", "python%d.%d" % sys.version_info[:2], "dist-packages")
else:
    path = sysconfig.get_path("purelib", "posix_prefix", where)
print(os.path.relpath(path, prefix))
