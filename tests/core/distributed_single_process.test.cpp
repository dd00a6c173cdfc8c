// grokalign/distributed.hpp built without MPI (this suite never defines GROKALIGN_HAVE_MPI;
// the 2-rank tests are tests/distributed/, run under mpirun): one process, rank 0 of 1, every
// collective the identity, batches sharded the same way, and a clear error when a program is
// asked to run distributed (issue 13).
#include <catch2/catch.hpp>

#include <cstdlib>
#include <grokalign/distributed.hpp>
#include <grokalign/grokalign.hpp>

namespace ga = grokalign;
namespace dist = grokalign::distributed;

TEST_CASE("shards tile a global batch in rank order", "[distributed]") {
  for (ga::index_t G : {0, 1, 7, 256})
    for (int n : {1, 2, 3, 8}) {
      ga::index_t next = 0;
      for (int r = 0; r < n; ++r) {
        const dist::Shard s = dist::shard_of(G, r, n);
        CHECK(s.offset == next);
        CHECK((s.rows == G / n || s.rows == G / n + 1));
        next += s.rows;
      }
      CHECK(next == G);
    }
  CHECK(dist::shard_of(7, 1, 2).offset == 4);
  CHECK_THROWS_WITH(dist::shard_of(7, 2, 2), Catch::Contains("rank 2 of 2"));

  const ga::Tensor<double> x = ga::Tensor<double>::from({3, 2}, {0, 1, 2, 3, 4, 5});
  const ga::Tensor<double> second = dist::shard_rows(x, dist::shard_of(3, 1, 2));
  CHECK(second.shape() == ga::Shape{1, 2});
  CHECK(second.data()[0] == 4);
  const ga::Indices tokens({0, 1, 2, 3, 4, 5}, ga::Shape{3, 2});
  const ga::Indices first = dist::shard_rows(tokens, dist::shard_of(3, 0, 2));
  CHECK(first.shape == ga::Shape{2, 2});
  CHECK(first[3] == 3);
  CHECK_THROWS_WITH(dist::shard_rows(x, dist::shard_of(4, 0, 2)), Catch::Contains("4-row batch"));
}

TEST_CASE("without MPI the distributed tools are one process", "[distributed]") {
  STATIC_REQUIRE(!dist::kHaveMpi);
  const dist::Communicator comm;
  CHECK(comm.rank() == 0);
  CHECK(comm.size() == 1);
  CHECK(comm.sum(2.5) == 2.5);
  CHECK(comm.mean(2.5) == 2.5);

  ga::Var<double> a(ga::Tensor<double>::from({2}, {1, 2}), true);
  ga::Var<double> b(ga::Tensor<double>::from({2, 2}, {1, 2, 3, 4}), true);
  ga::Var<double> unused(ga::Tensor<double>::ones({3}), true);
  dist::GradientAllreduce<double> reduce({a, b, unused});
  for (int step = 0; step < 2; ++step) {
    a.set_grad(ga::Tensor<double>::from({2}, {5, 6}));
    b.set_grad(ga::Tensor<double>::from({2, 2}, {7, 8, 9, 10}));
    unused.set_grad(ga::Tensor<double>());
    reduce();
    CHECK(a.grad().to_vector() == std::vector<double>{5, 6});
    CHECK(b.grad().to_vector() == std::vector<double>{7, 8, 9, 10});
    CHECK(b.grad().shape() == ga::Shape{2, 2});
    CHECK_FALSE(unused.grad().defined());  // no rank had one: the optimiser must skip it
  }
  CHECK(reduce.buffer_elements() == 2 + 4 + 3 + 3);
  dist::broadcast_parameters<double>({a, b});
  CHECK(a.value().to_vector() == std::vector<double>{1, 2});
  CHECK(dist::max_parameter_divergence<double>({a, b}) == 0);
}

TEST_CASE("a program built without MPI refuses to run distributed, saying so",
          "[distributed][errors]") {
  CHECK_THROWS_WITH(
      dist::require_mpi("--distributed"),
      Catch::Contains("--distributed needs MPI, but this program was built without it"));
  // Started by mpirun as one of 2 ranks: the environment refuses instead of running 2 copies.
  const char* old = std::getenv("OMPI_COMM_WORLD_SIZE");
  const std::string kept = old ? old : "";
  ::setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
  CHECK_THROWS_WITH(dist::Environment(), Catch::Contains("running as one of 2 ranks"));
  ::setenv("OMPI_COMM_WORLD_SIZE", "1", 1);
  CHECK_NOTHROW(dist::Environment());
  if (old)
    ::setenv("OMPI_COMM_WORLD_SIZE", kept.c_str(), 1);
  else
    ::unsetenv("OMPI_COMM_WORLD_SIZE");
}
