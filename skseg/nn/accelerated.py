"""Data-parallel training (several GPUs, or mixed precision) through Hugging Face
Accelerate, with skorch's :class:`~skorch.hf.AccelerateMixin`.

Accelerate shards ``DataLoader`` objects; skseg draws its own batches of unique
images (:class:`~skseg.nn.batching.PairBatches`), so here every process draws
the same epoch plan (same seed) and trains on its share of the batches, while
DDP averages the gradients. Imported only when asked for: ``accelerate`` is an
optional dependency (``pip install "skseg[accelerate]"``).
"""

from skorch.hf import AccelerateMixin

from .net import SiameseNet


class AcceleratedSiameseNet(AccelerateMixin, SiameseNet):
    """:class:`~skseg.nn.SiameseNet` trained through an ``accelerate.Accelerator``.

    Parameters
    ----------
    accelerator : accelerate.Accelerator
        Decides the processes, device and precision.
    *args, **kwargs
        As for :class:`~skseg.nn.SiameseNet`.
    """

    def _shards(self, training):
        # Validation is not sharded: each process scores all of it, identically.
        if not training:
            return 1, 0
        return self.accelerator.num_processes, self.accelerator.process_index

    def _initialize_accelerator(self):
        # skorch prepares every criterion; ours have no parameters, and torch
        # refuses to wrap a parameter-free module in DDP. Prepare the others only.
        criteria = self._criteria
        self._criteria = [
            name for name in criteria
            if any(p.requires_grad for p in getattr(self, name + "_").parameters())
        ]
        try:
            return super()._initialize_accelerator()
        finally:
            self._criteria = criteria

    def _siamese_module(self):
        # Inside training the module is wrapped (DDP); pair_distance lives on the original.
        return self.accelerator.unwrap_model(self.module_)

    def to_plain_net(self, **kwargs):
        """A plain :class:`~skseg.nn.SiameseNet` holding the trained weights, history
        and optimizer state, for prediction, pickling and saving (an
        ``Accelerator`` is neither picklable nor needed once trained).

        ``kwargs`` are the plain net's constructor arguments.
        """
        self._unwrap_accelerator()
        plain = SiameseNet(**kwargs).initialize()
        plain.module_.load_state_dict(self.module_.state_dict())
        optimizer = getattr(self.optimizer_, "optimizer", self.optimizer_)
        plain.optimizer_.load_state_dict(optimizer.state_dict())
        plain.history = self.history
        return plain
