"""Sphinx configuration of mlp_numba's documentation: ``python -m sphinx -W -b html docs
docs/_build/html`` (the ``docs`` extra installs what it needs)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlp_numba

HERE = Path(__file__).parent
ROOT = HERE.parent

project = "mlp_numba"
author = "The mlp_numba developers"
copyright = "2026, The mlp_numba developers"
release = version = mlp_numba.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_nb",
]
templates_path = ["_templates"]
# The gallery writes notebooks of its examples beside their pages: they are downloads, not
# pages of their own.
exclude_patterns = ["_build", "**.ipynb_checkpoints", "jupyter_execute", "auto_examples/*.ipynb",
                    "sg_execution_times.rst"]  # fmt: skip
html_theme = "pydata_sphinx_theme"
html_title = f"mlp_numba {release}"
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}
html_static_path = []

autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_validation_checks = set()
# scikit-learn's metadata-routing setters and its score() refer to scikit-learn's own pages.
autodoc_default_options = {
    "exclude-members": (
        "set_fit_request,set_partial_fit_request,set_score_request,score,get_metadata_routing"
    ),
}

# The gallery: examples/gallery/*.py, run at build time, their figures in the pages.
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples" / "gallery"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    # The files are numbered in reading order.
    "within_subsection_order": "FileNameSortKey",
}

# The tutorial notebook, run top to bottom at build time by myst-nb.
nb_execution_mode = "force"
nb_execution_timeout = 600
nb_execution_raise_on_error = True
source_suffix = {".rst": "restructuredtext", ".ipynb": "myst-nb", ".md": "myst-nb"}
_tutorial = HERE / "tutorial"
_tutorial.mkdir(exist_ok=True)
shutil.copyfile(ROOT / "examples" / "two_layer_net.ipynb", _tutorial / "two_layer_net.ipynb")


def _command_help():
    """The command line's help texts, as ``cli.rst`` includes them."""
    out = ["\n"]
    for args in ([], ["train"], ["search"], ["evaluate"], ["predict"], ["info"]):
        text = subprocess.run(
            [sys.executable, "-m", "mlp_numba", *args, "--help"],
            capture_output=True, text=True, check=True,
            env={**os.environ, "COLUMNS": "72"},
        ).stdout  # fmt: skip
        title = " ".join(["mlp-numba", *args])
        out += [title, "-" * len(title), "", ".. code-block:: text", ""]
        out += ["   " + line for line in text.splitlines()] + [""]
    (HERE / "_cli_help.rst.inc").write_text("\n".join(out))


_command_help()
