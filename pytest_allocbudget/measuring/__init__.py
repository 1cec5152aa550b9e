"""Measuring: the allocation counter, the measured window and its recipe, and the calls made again in forked
children (a failure's second and third calls, its explanation).  Nothing here imports pytest or knows of budgets."""
