// The NCCL calls of tensor parallelism (issue 8) behind a plain handle, so that a build without
// NCCL compiles the same backend and refuses --tensor-parallel-size above 1 with a message.
// One communicator per rank; the unique id that joins them is plain bytes, so the rendezvous can
// go over any channel (threads of one process here, a TCP socket between hosts later).
#pragma once

#include <cuda_runtime.h>

#include <array>
#include <cstddef>

namespace fp4llm::cuda {

struct Communicator {
  void* comm = nullptr;  // ncclComm_t
  int rank = 0, size = 1;
  bool active() const { return size > 1; }
};

using CommunicatorId = std::array<char, 128>;  // ncclUniqueId

bool nccl_available();
CommunicatorId new_communicator_id();
// Blocks until all `size` ranks have called it with the same id (call from one thread per rank).
// The calling thread's current device is the rank's GPU.
Communicator join_communicator(const CommunicatorId& id, int rank, int size);
void leave_communicator(Communicator& c);

// In place, sum over ranks, float32.
void all_reduce_sum(float* data, size_t count, const Communicator& c, cudaStream_t stream);
// recv = [rank 0's send | rank 1's send | ...], `count` floats each.
void all_gather(const float* send, float* recv, size_t count, const Communicator& c, cudaStream_t stream);

}  // namespace fp4llm::cuda
