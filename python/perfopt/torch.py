"""PyTorch support: cleanup handlers, CUDA memory figures, and the batch probe's CUDA measure.

Importing perfopt.torch installs its cleanup handlers into every live PerformanceOptimizer (and
PerformanceOptimizer installs them itself when torch is already imported):

- "torch.cuda.empty_cache" (resource type gpu): returns cached, unused CUDA blocks to the driver;
- "torch.cuda.ipc_collect" (gpu, aggressive cleanups only): frees memory held for CUDA IPC;

both only when CUDA is available (torch.cuda.is_available()). gc.collect is registered for every
optimizer already ("python.gc"). The guard treats torch.cuda.OutOfMemoryError, and the
RuntimeError("CUDA out of memory...") of older versions, as an out-of-memory (perfopt's
is_out_of_memory), so the fallback runs.

GPU memory: cuda_memory(device) reads torch.cuda.memory_stats: allocated and reserved bytes and
the fragmentation between them (reserved but not allocated: the caching allocator's free blocks);
add_torch_figures(devices) puts them beside NVML's figures for the same device (matched by UUID
when torch reports one, else by index: CUDA_VISIBLE_DEVICES can renumber devices).
"""
import torch

from . import optimizer as _optimizer


def cuda_available():
    try:
        return bool(torch.cuda.is_available())
    except Exception:
        return False


def install(opt):
    """Registers torch's cleanup handlers in `opt` (once). Returns the handler ids."""
    if getattr(opt, "_torch_handlers", None) is not None:
        return opt._torch_handlers
    ids = []
    if cuda_available():
        ids.append(opt.register_cleanup(torch.cuda.empty_cache, "torch.cuda.empty_cache",
                                        "gpu", priority=90))
        ids.append(opt.register_cleanup(torch.cuda.ipc_collect, "torch.cuda.ipc_collect", "gpu",
                                        priority=91, min_level="aggressive"))
    opt._torch_handlers = ids
    return ids


def cuda_memory(device=0):
    """torch's view of one CUDA device's memory, in bytes (None without CUDA)."""
    if not cuda_available():
        return None
    s = torch.cuda.memory_stats(device)
    allocated = int(s.get("allocated_bytes.all.current", 0))
    reserved = int(s.get("reserved_bytes.all.current", 0))
    return {
        "device": device,
        "allocated_bytes": allocated,
        "reserved_bytes": reserved,
        "peak_allocated_bytes": int(s.get("allocated_bytes.all.peak", 0)),
        "peak_reserved_bytes": int(s.get("reserved_bytes.all.peak", 0)),
        "fragmentation_bytes": reserved - allocated,
        "fragmentation_ratio": (reserved - allocated) / reserved if reserved else 0.0,
        "num_alloc_retries": int(s.get("num_alloc_retries", 0)),
        "num_ooms": int(s.get("num_ooms", 0)),
    }


def _uuid(index):
    try:
        u = getattr(torch.cuda.get_device_properties(index), "uuid", None)
        return None if u is None else str(u)
    except Exception:
        return None


def add_torch_figures(devices):
    """Adds 'torch' (cuda_memory) to each NVML device dict that torch can see, in place."""
    if not cuda_available():
        return devices
    by_uuid = {d.get("uuid", "").replace("GPU-", ""): d for d in devices}
    for i in range(torch.cuda.device_count()):
        u = _uuid(i)
        d = by_uuid.get(u.replace("GPU-", "")) if u else None
        if d is None and i < len(devices):
            d = devices[i]
        if d is None:
            continue
        m = cuda_memory(i)
        m["nvml_used_bytes"] = d.get("memory_used_bytes")
        # What NVML counts beyond torch's reservation: the CUDA context, other libraries and
        # other processes on the device.
        used = d.get("memory_used_bytes")
        m["outside_torch_bytes"] = None if used is None else max(used - m["reserved_bytes"], 0)
        d["torch"] = m
    return devices


class PeakMeasure:
    """The batch probe's measure for a CUDA device: before a step it resets the peak and returns
    the bytes allocated; after it, the peak (torch.cuda.max_memory_allocated). Calls alternate."""

    def __init__(self, device=0):
        self.device, self._before = device, True

    def __call__(self):
        if self._before:
            self._before = False
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            return int(torch.cuda.memory_allocated(self.device))
        self._before = True
        torch.cuda.synchronize(self.device)
        return int(torch.cuda.max_memory_allocated(self.device))


def batch_probe(opt, step, device=None, **options):
    """Batch size from measured memory for a torch training step (step(batch) runs one forward
    and backward pass). device: a CUDA index (peak allocated bytes) or None for the CPU (the
    process's peak RSS)."""
    if device is None:
        return opt.batch_probe(step, **options)

    def cleaned_step(batch):
        try:
            step(batch)
        finally:
            torch.cuda.empty_cache()

    return opt.batch_probe(cleaned_step, device=device, measure=PeakMeasure(device), **options)


is_out_of_memory = _optimizer.is_out_of_memory

for _opt in _optimizer.live_optimizers():
    if not _opt.closed:
        install(_opt)
