"""The report: numbers and sentences (``insights``), charts, the state-machine picture,
papermill + HTML (``notebooks``) and the terminal summary of a run (``console``)."""
