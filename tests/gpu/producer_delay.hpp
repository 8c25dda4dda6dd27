// A kernel that lets its dependents start, then keeps the stream busy (producer_delay.cu).
#pragma once

#include <cuda_runtime.h>

namespace fp4llm::test_support {

// Launches one block that calls griddepcontrol.launch_dependents and then spins for `microseconds`
// at the device's reported clock (longer where the SM runs slower: only a lower bound matters).
void delay_stream(cudaStream_t stream, double microseconds);

}  // namespace fp4llm::test_support
