"""core: what every lesson uses. Imports none of the other areas.

==============  ========================================================  =======
module          what it holds                                             lessons
==============  ========================================================  =======
``runtime``     ``set_seed`` (Python, NumPy, torch, CUDA), ``get_device``  all
``paths``       the output root and its folders (``GAN_UTILS_ROOT``)       all
``checks``      the input checks: TypeError for a wrong type, ValueError   all
                for a value out of range, one wording
``losses``      the loss registry on logits and the gradient penalty       01-06
``mlp``         MLP generator and critic builders                          01, 02, 06
``latent``      the one ``sample_latent`` and the one ``generate``         01-07
``loop``        the one step loop (``run_steps``), the callback protocol   01-06
                (``Callback``, ``every``), ``DivergenceError``
``train``       ``TrainConfig`` and the GAN step: n_critic critic steps,   01-06
                one generator step; ``train``
``variants``    the ten loss variants by name (``get_variant``)            02, 04, 06
``checkpoints`` atomic checkpoints with RNG states; saved generators      all
                (``save_generator`` / ``load_generator``)
``history``     the training history (``history.series("d_loss")``)        all
``report``      ``start_lesson`` / ``show_results``: results and run ids   all
``plotting``    figures and GIFs stamped with the run id, sample scatters  all
``executor``    the one executor of every sweep (``run_jobs``): here, in   02, 04
                local processes or on a Dask cluster; retries dead workers
``lessons``     the lesson runner behind ``make run`` and ``make refresh``
==============  ========================================================  =======
"""
