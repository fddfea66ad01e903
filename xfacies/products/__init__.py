"""Products: per-glacier glaciological signals from class maps.

=============  ==================================================
module         concern
=============  ==================================================
``fractions``  facies fractions per glacier and date; the AAR proxy
``snowline``   snowline altitude per glacier and date
``season``     one value per hydrological year (end of season)
=============  ==================================================
"""

from xfacies.products.fractions import CLOUD, REFROZEN, aar_proxy, fractions
from xfacies.products.season import end_of_season
from xfacies.products.snowline import snowline_altitude

__all__ = ["fractions", "aar_proxy", "snowline_altitude", "end_of_season", "CLOUD", "REFROZEN"]
