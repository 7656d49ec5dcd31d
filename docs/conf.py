"""Sphinx configuration of the skseg documentation.

Build (from the repository root)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

The gallery executes every ``examples/plot_*.py``; add ``-D plot_gallery=0``
to build the pages without running them. On a small or shared CPU, set
``OMP_NUM_THREADS=1``: the examples' small networks gain nothing from more
torch threads, and on a busy 2-core machine two threads were several times
slower than one. Links to the documentation of
Python, NumPy, scikit-learn, PyTorch, skorch and joblib need network access
to their inventories: set ``SKSEG_DOCS_INTERSPHINX=1`` to enable them.
"""

import argparse
import os
import re
import warnings
from importlib.util import find_spec

import skseg

# -- Project -------------------------------------------------------------------

project = "skseg"
author = "skseg developers"
copyright = "skseg developers"
release = skseg.__version__
version = ".".join(release.split(".")[:2])

# -- General -------------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
if os.environ.get("SKSEG_DOCS_INTERSPHINX"):
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "sklearn": ("https://scikit-learn.org/stable", None),
        "torch": ("https://docs.pytorch.org/docs/stable", None),
        "skorch": ("https://skorch.readthedocs.io/en/stable", None),
        "joblib": ("https://joblib.readthedocs.io/en/stable", None),
    }

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
default_role = "literal"  # `x` renders as code, as ``x``

# -- API reference: autodoc, autosummary, numpydoc ---------------------------------

autosummary_generate = True
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "none"  # the numpydoc Parameters sections say it all
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False


def _skip_sklearn_plumbing(app, what, name, obj, skip, options):
    """Leave out methods that scikit-learn generates for metadata routing."""
    if re.fullmatch(r"set_\w+_request|get_metadata_routing", name):
        return True
    return None


def _write_cli_help(app):
    """``skseg <command> --help`` as text files, included by user_guide/cli.rst."""
    from skseg.cli import build_parser

    out = os.path.join(app.srcdir, "generated", "cli")
    os.makedirs(out, exist_ok=True)
    os.environ["COLUMNS"] = "88"  # argparse wraps to the terminal width
    parser = build_parser()
    helps = {"skseg": parser.format_help()}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, subparser in action.choices.items():
                helps[name] = subparser.format_help()
    for name, text in helps.items():
        path = os.path.join(out, f"{name}.txt")
        previous = open(path).read() if os.path.exists(path) else None
        if text != previous:  # rewrite only on change, so Sphinx does not rebuild
            with open(path, "w") as f:
                f.write(text)


def setup(app):
    app.connect("autodoc-skip-member", _skip_sklearn_plumbing)
    app.connect("builder-inited", _write_cli_help)


# -- Gallery ---------------------------------------------------------------------

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    # Only plot_*.py are executed; real_data_*.py need a data folder and are
    # shown with their source only.
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("skseg",),
    "backreferences_dir": "generated/backreferences",
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
    "min_reported_time": 1,
    "matplotlib_animations": False,
    "show_memory": False,
}

# Examples import matplotlib.pyplot; render off screen.
os.environ.setdefault("MPLBACKEND", "Agg")
warnings.filterwarnings(
    "ignore", category=UserWarning, message="Matplotlib is currently using agg"
)

# -- HTML ------------------------------------------------------------------------

if find_spec("pydata_sphinx_theme") is not None:
    html_theme = "pydata_sphinx_theme"
    html_theme_options = {
        "navigation_with_keys": False,
        "show_prev_next": False,
        "secondary_sidebar_items": ["page-toc"],
    }
else:
    html_theme = "alabaster"
html_title = f"skseg {release}"
html_static_path = []
