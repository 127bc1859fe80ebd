"""The kiosk's Textual screens; they call the services of the ``kiosk`` package."""
