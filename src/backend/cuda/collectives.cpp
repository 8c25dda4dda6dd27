#include "backend/cuda/collectives.hpp"

#include <cstring>
#include <string>

#include "backend/cuda/cuda_check.hpp"

#ifdef FP4LLM_WITH_NCCL
#include <nccl.h>
#endif

namespace fp4llm::cuda {

#ifdef FP4LLM_WITH_NCCL

namespace {

void check(ncclResult_t r, const char* what) {
  if (r != ncclSuccess) throw_error(std::string("NCCL ") + what + ": " + ncclGetErrorString(r));
}

ncclComm_t comm_of(const Communicator& c) { return static_cast<ncclComm_t>(c.comm); }

}  // namespace

bool nccl_available() { return true; }

CommunicatorId new_communicator_id() {
  static_assert(sizeof(ncclUniqueId) == sizeof(CommunicatorId));
  ncclUniqueId id;
  check(ncclGetUniqueId(&id), "ncclGetUniqueId");
  CommunicatorId out;
  std::memcpy(out.data(), &id, sizeof id);
  return out;
}

Communicator join_communicator(const CommunicatorId& id, int rank, int size) {
  ncclUniqueId nid;
  std::memcpy(&nid, id.data(), sizeof nid);
  ncclComm_t comm = nullptr;
  check(ncclCommInitRank(&comm, size, nid, rank), "ncclCommInitRank");
  return {comm, rank, size};
}

void leave_communicator(Communicator& c) {
  if (c.comm) ncclCommDestroy(comm_of(c));
  c = {};
}

void all_reduce_sum(float* data, size_t count, const Communicator& c, cudaStream_t stream) {
  check(ncclAllReduce(data, data, count, ncclFloat32, ncclSum, comm_of(c), stream), "ncclAllReduce");
}

void all_gather(const float* send, float* recv, size_t count, const Communicator& c, cudaStream_t stream) {
  check(ncclAllGather(send, recv, count, ncclFloat32, comm_of(c), stream), "ncclAllGather");
}

#else

namespace {
[[noreturn]] void no_nccl() { throw_error("tensor parallelism needs NCCL, and this build has none"); }
}  // namespace

bool nccl_available() { return false; }
CommunicatorId new_communicator_id() { no_nccl(); }
Communicator join_communicator(const CommunicatorId&, int, int) { no_nccl(); }
void leave_communicator(Communicator& c) { c = {}; }
void all_reduce_sum(float*, size_t, const Communicator&, cudaStream_t) { no_nccl(); }
void all_gather(const float*, float*, size_t, const Communicator&, cudaStream_t) { no_nccl(); }

#endif

}  // namespace fp4llm::cuda
