"""The staff console (``kiosk staff``): the same program, for reception and the exam office."""
