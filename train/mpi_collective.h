// The MPI world as a Collective (engine/collective.h), for `mpirun -np N mriscan train`.
//
// mpi_world_if_launched() initialises MPI only when this process was started by an MPI launcher (OpenMPI's
// mpirun sets OMPI_COMM_WORLD_SIZE, Slurm's srun SLURM_STEP_NUM_TASKS, other PMI launchers PMI_SIZE or
// PMIX_RANK), so a plain `mriscan train` never touches MPI. Built without MPI (CMake option MRISCAN_MPI off, or no OpenMPI found), it
// returns nullptr, and under a launcher it refuses to start N independent copies of the same run.
// MPI is initialised with MPI_THREAD_FUNNELED: only the training thread calls MPI (data-loader workers never do).
// What it is not: a launcher or a cluster scheduler; see docs/distributed_training.md.
#pragma once

#include <memory>

#include "engine/collective.h"

namespace mriscan {

// The world of the launched job (MPI_Finalize when destroyed), or nullptr when not launched by MPI. Throws
// std::runtime_error when launched by MPI with more than one process but built without MPI.
std::unique_ptr<Collective> mpi_world_if_launched();

}  // namespace mriscan
