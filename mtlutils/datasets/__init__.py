"""The datasets of the book, one module each: ``clusters`` (synthetic tasks with known groups), ``multimnist``
(MultiMNIST and its digit attributes), ``celeba``, ``nyuv2``, and ``prepared`` (the files the data scripts write).
``mtlutils.data.load`` gives any of them as a TaskSuite."""
