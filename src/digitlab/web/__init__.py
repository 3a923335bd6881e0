"""The draw-a-digit web page and its JSON API (`digitlab serve`)."""
