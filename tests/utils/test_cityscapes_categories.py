"""The class-name -> category-id matching shared by the Cityscapes panoptic dataset
and metric."""
import pytest

from mmext.utils.cityscapes_categories import CONVERTER_COMMAND, category_ids_by_name
from mmext.utils.errors import UserError

# createPanopticImgs' categories: sparse labelIds, stuff listed before things
CATEGORIES = [dict(id=7, name='road', isthing=0), dict(id=23, name='sky', isthing=0),
              dict(id=24, name='person', isthing=1), dict(id=26, name='car', isthing=1)]


def test_label_i_gets_the_id_of_the_category_named_classes_i():
    ids = category_ids_by_name(('car', 'person', 'road', 'sky'), CATEGORIES, "'x.json'",
                               fix='', thing_classes=('car', 'person'))
    assert ids == [26, 24, 7, 23]
    # a subset, in any order: only the names decide
    assert category_ids_by_name(('sky', 'car'), CATEGORIES, "'x.json'", fix='') == [23, 26]


def test_unknown_class_names_the_class_the_source_and_the_fix():
    with pytest.raises(UserError) as e:
        category_ids_by_name(('car', 'truck'), CATEGORIES, "'x.json'", fix='Fix it.')
    assert str(e.value) == ("classes ['truck'] are not categories of 'x.json' (it has "
                            "['car', 'person', 'road', 'sky']). Fix it.")


def test_thing_stuff_disagreement_is_an_error_only_when_things_are_given():
    classes = ('car', 'sky')
    with pytest.raises(UserError, match=r"classes \['car', 'sky'\] are things in one"):
        category_ids_by_name(classes, CATEGORIES, "'x.json'", fix='', thing_classes=('sky', ))
    assert category_ids_by_name(classes, CATEGORIES, "'x.json'", fix='') == [26, 23]


def test_converter_command_names_the_converter_script(repo_root):
    import os.path as osp
    script = CONVERTER_COMMAND.split()[1]
    assert osp.isfile(osp.join(repo_root, script))
