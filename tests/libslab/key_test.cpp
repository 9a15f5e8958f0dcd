#include <slab/key.hpp>
