"""The system view: providers' submission packages as the input (an ICB's or NHS England's view).

:mod:`.sources` loads one provider's package (the IDB CSV files) into a warehouse schema of its
own; :mod:`.validate` runs the quality gate's rule engine per provider and writes one results
table with a provider column. See docs/system_view.md.
"""
