"""The project's named Jupyter kernel: this virtualenv's Python, whatever else is installed.

Notebooks name the kernel ``rental-kpis`` rather than the generic ``python3``, which a user-level
or system kernelspec can shadow with an interpreter that lacks the project's packages.
``make install`` registers it inside the virtualenv (``ipykernel install --sys-prefix``);
``project_kernel`` registers it there too when the package was installed another way.
"""

from __future__ import annotations

import os
import sys

from rental_kpis.errors import UsageError

KERNEL = "rental-kpis"
DISPLAY_NAME = "Python (rental_kpis)"


def project_kernel() -> str:
    """The kernel name to start notebooks with, once it is known to run this interpreter.

    A virtualenv's ``python`` is a symlink to the same base interpreter as every other venv's,
    so the spec's path is compared as written, not resolved.

    Raises:
        UsageError: a kernelspec of that name exists but starts another Python (a user-level
            one registered from another checkout, say), which would run without this project.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    manager = KernelSpecManager()
    try:
        spec = manager.get_kernel_spec(KERNEL)
    except NoSuchKernel:
        from ipykernel.kernelspec import install

        install(manager, kernel_name=KERNEL, display_name=DISPLAY_NAME, prefix=sys.prefix)
        return KERNEL
    python = spec.argv[0] if spec.argv else ""
    if os.path.abspath(python) != os.path.abspath(sys.executable):
        raise UsageError(
            f"the Jupyter kernel {KERNEL!r} in {spec.resource_dir} runs {python}, not this "
            f"project's {sys.executable}: remove it (jupyter kernelspec remove {KERNEL}) "
            "and run `make install` again"
        )
    return KERNEL
