"""Exactly what ships to EMR: schemas, the session, raw readers and lake file operations,
validation (SPEC §3), KPI transforms (SPEC §4) and the three steps.

Imports only pyspark, the standard library and the package root (``layout``, ``errors``,
``summaries``); ``tests/test_architecture.py`` holds it to that, and ``project.build_library_zip``
ships this folder and the root modules, nothing else.
"""
