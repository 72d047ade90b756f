"""Packaged configuration: the four stages' YAML files, the dataset-preparation settings and their schema.

The YAML files are package data, read with :mod:`importlib.resources` (see :mod:`siedob.config`);
``<stage>/configs/config.yaml`` in a checkout is an editable copy of the packaged one.
"""
