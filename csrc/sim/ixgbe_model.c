#include "ixgbe_model.h"
