"""Search sweeps: Optuna samples the trials, nnlab runs them (docs/sweeps.md, 'Search').

A sweep file's ``search:`` names the method (random or tpe), the number of trials to finish,
the validation metric and its direction; ``params:`` gives each dotted key's distribution. The
study lives in the sweep folder as Optuna's journal file (``search.journal``), so a sweep that
was killed resumes the same study: trials that were running are run again under their own
trial numbers, and the total of finished trials is ``trials``.

Each trial is asked for with a sampler seeded from the search seed and the trial number, so the
parameters of trial k do not depend on how many times the sweep was resumed.

With ``confirm: {top: k, seeds: n}``, once every trial has ended the k best completed trials
(the finalists) run again on n fresh seeds, as ordinary jobs ``confirm-<trial>,seed=<s>`` that
never feed the study; the winner is the finalist with the best mean of the search metric over
all its runs (:func:`~nnlab.sweeps.search.confirm.finalists`).

The search goes through :mod:`~nnlab.sweeps.search.space` (the sweep file's ``search:`` and
``params:``), :mod:`~nnlab.sweeps.search.study` (Optuna's study in the journal file and the
trials it hands out), :mod:`~nnlab.sweeps.search.pruning` and
:mod:`~nnlab.sweeps.search.results` (finalists, winner, search.md, best.yaml, figures).
"""
