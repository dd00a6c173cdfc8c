// distributed::SharedCounter under mpirun (issue 13): every value 0 .. kValues-1 is drawn
// exactly once over all ranks and threads, and a rank that draws while another is busy (not
// in MPI) is not held up by it. A plain program like data_parallel.cpp: each verdict is agreed
// by a collective before anyone acts on it.
#include <grokalign/distributed/shared_counter.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <thread>
#include <vector>

namespace dist = grokalign::distributed;

int main(int argc, char** argv) {
  dist::Environment env(&argc, &argv);
  const dist::Communicator comm = env.world();
  constexpr std::int64_t kValues = 2000;
  std::vector<std::int64_t> drawn(kValues, 0);  // how often this rank drew each value
  double late = 0;
  {
    dist::SharedCounter counter(comm);
    // Two threads a rank, as a sweep's --jobs 2.
    auto draw = [&] {
      for (std::int64_t v = counter.next(); v < kValues; v = counter.next()) ++drawn[v];
    };
    std::thread t(draw);
    draw();
    t.join();
    comm.barrier();
    // Rank 0 computes for 300 ms without calling MPI while the others draw: on shared memory
    // a draw does not wait for it.
    if (comm.rank() == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    } else {
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < 10; ++i) (void)counter.next();
      late = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    comm.barrier();
  }
  comm.allreduce(drawn.data(), kValues);
  int failures = 0;
  std::int64_t wrong = 0;
  for (std::int64_t v = 0; v < kValues; ++v) wrong += drawn[v] != 1;
  failures += wrong != 0;
  const double slowest = comm.max(late);
  failures += slowest > 0.25;
  if (comm.is_root()) {
    std::printf("%s every value of 0..%lld drawn once over %d ranks x 2 threads (%lld wrong)\n",
                wrong ? "FAIL" : "ok  ", static_cast<long long>(kValues - 1), comm.size(),
                static_cast<long long>(wrong));
    std::printf("%s 10 draws while rank 0 was busy outside MPI took %.3f s (limit 0.25 s)\n",
                slowest > 0.25 ? "FAIL" : "ok  ", slowest);
  }
  return failures ? 1 : 0;
}
