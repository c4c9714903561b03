"""The card templates (JSON). A package only so that the JSON files ship with the wheel."""
