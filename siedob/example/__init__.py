"""The bundled edit example (package data, in the authors' layout), made by ``siedob.edit.make_example``.

``images/``, ``labels/``, ``inst_map/``, ``mask/`` and ``object_style/{car,person}/{images,inst_mask}/``
hold one synthetic scene and its style references; ``siedob-edit`` and ``fusion/test_one_image.py``
edit it by default. ``fusion/example`` in a checkout is a link to this folder.
"""
