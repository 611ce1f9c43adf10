"""toy: the 1-D and 2-D toy problems. Imports core only.

===============  =======================================================  ==========
module           what it holds                                            lessons
===============  =======================================================  ==========
``mixtures``     Gaussian mixtures: 1-D, ring, grid, wide ring             01, 02, 06
``diagnostics``  1-D W1, JSD and the minimax value by quadrature, the      01
                 gradient that reaches G, dead units
``coverage``     modes covered / hit, % high quality, KL to uniform;       02, 06
                 ``evaluate_coverage`` and a coverage callback
``runs``         one toy run (``train_toy``, ``ToySettings``), sweeps      02
                 over variants x datasets x seeds, the results CSV
``plots``        snapshots, final samples, modes covered over seeds        02
``cli``          the ``gan-toy`` command                                   02
``explorer``     the ipywidgets explorer (train, watch, stop)              02
===============  =======================================================  ==========
"""
