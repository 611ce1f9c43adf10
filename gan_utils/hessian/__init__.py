"""hessian: Hessian spectra by Lanczos, and NU-GAN. Imports core only.

==============  ========================================================  =======
module          what it holds                                             lessons
==============  ========================================================  =======
``lanczos``     Hessian-vector products (``HessianOperator``), Lanczos    06
                with full reorthogonalisation, ``top_eigenpairs``, the
                dense Hessian for checks
``spectra``     the top eigenvalues of G's and D's losses; a training     06
                callback that logs them
``nu_gan``      NU-GAN's gradient nudge away from sharp directions, as a  06
                gradient hook of the training loop
``sharpness``   spectra paired with coverage: merged series, rank         06
                correlation, late means
==============  ========================================================  =======
"""
