"""``siedob-studio``: a local editing page and its JSON/multipart API over one loaded :class:`~siedob.edit.Editor`.

``server`` builds the Starlette app, ``catalog`` lists what the server may read (scenes, style
references, object shapes), ``uploads`` turns request bodies into validated inputs under size limits,
``worker`` runs the edits one at a time off the event loop, ``cli`` is the console script; the page
itself is ``static/`` (plain HTML, JS and CSS, no build step, no network).
"""
