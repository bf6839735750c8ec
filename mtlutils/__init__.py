"""mtlutils: the helper package of the multi-task optimization book.

Modules, from the bottom up: ``tasks`` (Task, TaskSuite), ``data`` (``load``) over the ``datasets`` subpackage,
``toy`` (a 2-D landscape), ``models``, ``metrics``, ``affinity``, ``strategies``, ``train`` (``fit``),
``experiments`` (cached grids) and ``plots``.
"""

__version__ = "0.1.0"
