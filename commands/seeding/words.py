"""The vocabulary of a seeded catalog: the category tree (with the nouns products of
each leaf are named after), brands, adjectives, colours, materials, sizes and review
texts. Plain data: ``commands.seeding.drafts`` (and the seeder's accounts and
categories) draw from it with a seeded RNG, so a seed always yields the same catalog."""

from __future__ import annotations

from typing import TypeAlias

Leaves: TypeAlias = dict[str, list[str]]
"""Leaf category name -> the product nouns sold in it."""

TAXONOMY: dict[str, dict[str, Leaves | list[str]]] = {
    "Electronics": {
        "Audio": {
            "Headphones": ["Headphones", "Earbuds", "Headset"],
            "Speakers": ["Bluetooth Speaker", "Soundbar", "Bookshelf Speakers"],
            "Turntables": ["Turntable", "Record Player"],
            "Microphones": ["Microphone", "Podcast Microphone"],
        },
        "Computers": {
            "Laptops": ["Laptop", "Notebook Computer", "Ultrabook"],
            "Monitors": ["Monitor", "Display"],
            "Keyboards & Mice": ["Keyboard", "Mouse", "Trackpad"],
            "Storage": ["SSD", "Hard Drive", "USB Stick"],
            "Networking": ["Router", "Mesh Wi-Fi System", "Network Switch"],
        },
        "Phones & Tablets": {
            "Smartphones": ["Smartphone"],
            "Tablets": ["Tablet"],
            "Cases & Covers": ["Phone Case", "Tablet Sleeve", "Screen Protector"],
            "Chargers": ["Charger", "Power Bank", "Charging Cable"],
        },
        "Cameras": {
            "Digital Cameras": ["Camera", "Mirrorless Camera", "Action Camera"],
            "Lenses": ["Lens", "Zoom Lens", "Prime Lens"],
            "Tripods": ["Tripod", "Gimbal"],
        },
        "TV & Video": {
            "Televisions": ["Television", "Smart TV"],
            "Projectors": ["Projector"],
            "Streaming Devices": ["Streaming Stick", "Media Player"],
        },
        "Wearables": ["Smartwatch", "Fitness Tracker"],
        "Gaming": {
            "Consoles": ["Console", "Handheld Console"],
            "Controllers": ["Controller", "Gamepad"],
            "Gaming Chairs": ["Gaming Chair"],
        },
    },
    "Clothing": {
        "Women": {
            "Dresses": ["Dress", "Maxi Dress", "Wrap Dress"],
            "Tops": ["Blouse", "T-Shirt", "Tank Top"],
            "Women's Jeans": ["Jeans", "Skinny Jeans", "Mom Jeans"],
            "Women's Coats": ["Coat", "Jacket", "Parka", "Trench Coat"],
            "Women's Knitwear": ["Sweater", "Cardigan"],
            "Skirts": ["Skirt", "Midi Skirt"],
        },
        "Men": {
            "Shirts": ["Shirt", "Oxford Shirt", "Flannel Shirt"],
            "Men's T-Shirts": ["T-Shirt", "Polo Shirt"],
            "Trousers": ["Chinos", "Trousers", "Cargo Pants"],
            "Men's Jeans": ["Jeans", "Slim Jeans"],
            "Men's Coats": ["Coat", "Jacket", "Bomber Jacket", "Parka"],
            "Men's Knitwear": ["Jumper", "Hoodie", "Cardigan"],
        },
        "Kids": {
            "Baby": ["Bodysuit", "Romper", "Sleepsuit"],
            "Girls": ["Dress", "Leggings", "Hoodie"],
            "Boys": ["Shorts", "Hoodie", "T-Shirt"],
        },
        "Sportswear": {
            "Running Wear": ["Running Shorts", "Running Tights", "Running Jacket"],
            "Yoga Wear": ["Yoga Pants", "Sports Bra"],
            "Swimwear": ["Swimsuit", "Swim Shorts", "Bikini"],
        },
        "Underwear & Socks": ["Socks", "Boxer Briefs", "Bra", "Pyjamas"],
    },
    "Shoes": {
        "Sneakers": ["Sneakers", "Trainers", "High-Tops"],
        "Boots": ["Boots", "Chelsea Boots", "Hiking Boots"],
        "Sandals": ["Sandals", "Flip-Flops"],
        "Formal Shoes": ["Oxfords", "Loafers", "Heels"],
        "Running Shoes": ["Running Shoes", "Trail Shoes"],
        "Slippers": ["Slippers"],
    },
    "Home & Kitchen": {
        "Cookware": {
            "Pots & Pans": ["Frying Pan", "Saucepan", "Dutch Oven", "Wok"],
            "Bakeware": ["Baking Tray", "Cake Tin", "Muffin Tin"],
            "Knives": ["Chef's Knife", "Knife Block", "Bread Knife"],
        },
        "Kitchen Appliances": {
            "Coffee Makers": ["Coffee Maker", "Espresso Machine", "Coffee Grinder"],
            "Blenders": ["Blender", "Food Processor", "Hand Mixer"],
            "Kettles & Toasters": ["Kettle", "Toaster"],
            "Air Fryers": ["Air Fryer", "Slow Cooker"],
        },
        "Tableware": ["Plate Set", "Bowl", "Mug", "Wine Glasses", "Cutlery Set"],
        "Bedding": ["Duvet", "Pillow", "Bed Sheets", "Blanket", "Duvet Cover"],
        "Bath": ["Towel Set", "Bath Mat", "Shower Curtain", "Bathrobe"],
        "Furniture": {
            "Living Room": ["Sofa", "Armchair", "Coffee Table", "TV Stand"],
            "Bedroom": ["Bed Frame", "Wardrobe", "Nightstand", "Dresser"],
            "Home Office": ["Desk", "Office Chair", "Bookshelf"],
        },
        "Lighting": ["Floor Lamp", "Table Lamp", "Pendant Light", "LED Strip"],
        "Decor": ["Vase", "Picture Frame", "Candle", "Rug", "Mirror", "Cushion"],
        "Storage & Organisation": ["Storage Box", "Basket", "Shelf Unit", "Coat Rack"],
    },
    "Beauty & Health": {
        "Skincare": ["Face Cream", "Serum", "Cleanser", "Sunscreen", "Face Mask"],
        "Haircare": ["Shampoo", "Conditioner", "Hair Dryer", "Hair Straightener"],
        "Makeup": ["Lipstick", "Mascara", "Foundation", "Eyeshadow Palette"],
        "Fragrance": ["Eau de Parfum", "Eau de Toilette", "Body Mist"],
        "Personal Care": ["Electric Toothbrush", "Shaver", "Beard Trimmer"],
        "Vitamins & Supplements": ["Multivitamin", "Vitamin D", "Protein Powder", "Omega-3"],
    },
    "Sports & Outdoors": {
        "Fitness": {
            "Weights": ["Dumbbells", "Kettlebell", "Weight Plates"],
            "Cardio Machines": ["Treadmill", "Exercise Bike", "Rowing Machine"],
            "Mats & Recovery": ["Yoga Mat", "Foam Roller", "Massage Gun"],
        },
        "Cycling": {
            "Bikes": ["Road Bike", "Mountain Bike", "E-Bike", "City Bike"],
            "Cycling Accessories": ["Bike Helmet", "Bike Light", "Bike Lock", "Saddle Bag"],
        },
        "Camping": ["Tent", "Sleeping Bag", "Camping Stove", "Headlamp", "Camping Chair"],
        "Hiking": ["Backpack", "Trekking Poles", "Water Bottle", "Rain Jacket"],
        "Water Sports": ["Paddle Board", "Wetsuit", "Snorkel Set", "Kayak"],
        "Team Sports": ["Football", "Basketball", "Tennis Racket", "Volleyball"],
        "Winter Sports": ["Skis", "Snowboard", "Ski Goggles", "Ski Jacket"],
    },
    "Toys & Games": {
        "Building Toys": ["Building Set", "Construction Kit", "Marble Run"],
        "Board Games": ["Board Game", "Card Game", "Jigsaw Puzzle"],
        "Dolls & Figures": ["Doll", "Action Figure", "Plush Toy"],
        "Outdoor Toys": ["Scooter", "Kite", "Trampoline", "Water Pistol"],
        "Educational Toys": ["Science Kit", "Coding Robot", "Microscope"],
        "Baby & Toddler": ["Rattle", "Stacking Toy", "Play Mat"],
    },
    "Books & Media": {
        "Fiction": ["Novel", "Thriller", "Fantasy Novel", "Crime Novel"],
        "Non-Fiction": ["Biography", "Cookbook", "Travel Guide", "History Book"],
        "Children's Books": ["Picture Book", "Activity Book"],
        "Music": ["Vinyl Record", "CD Album"],
        "Films": ["Blu-ray", "DVD Box Set"],
    },
    "Garden & DIY": {
        "Power Tools": ["Drill", "Impact Driver", "Circular Saw", "Sander", "Jigsaw"],
        "Hand Tools": ["Hammer", "Screwdriver Set", "Wrench Set", "Tape Measure"],
        "Gardening": {
            "Lawn Care": ["Lawn Mower", "Leaf Blower", "Strimmer"],
            "Garden Tools": ["Hedge Trimmer", "Garden Hose", "Pruning Shears", "Spade"],
            "Plants & Seeds": ["Seed Kit", "Planter", "Grow Light"],
        },
        "Outdoor Living": ["Garden Chair", "Parasol", "Barbecue", "Fire Pit", "Hammock"],
        "Paint & Decorating": ["Paint", "Paint Roller", "Wallpaper"],
    },
    "Pets": {
        "Dogs": ["Dog Bed", "Dog Lead", "Dog Toy", "Dog Food", "Dog Collar"],
        "Cats": ["Cat Tree", "Cat Litter", "Cat Toy", "Cat Food"],
        "Aquatics": ["Aquarium", "Fish Food", "Aquarium Filter"],
        "Small Animals": ["Hutch", "Hay", "Small Animal Cage"],
        "Birds": ["Bird Feeder", "Bird Seed", "Bird Cage"],
    },
    "Food & Drink": {
        "Coffee & Tea": ["Coffee Beans", "Ground Coffee", "Green Tea", "Herbal Tea"],
        "Snacks": ["Chocolate", "Crisps", "Granola Bar", "Trail Mix"],
        "Pantry": ["Olive Oil", "Pasta", "Rice", "Spice Set", "Honey"],
        "Drinks": ["Sparkling Water", "Juice", "Kombucha"],
    },
    "Office & Stationery": {
        "Writing": ["Fountain Pen", "Ballpoint Pen", "Pencil Set", "Marker Set"],
        "Paper": ["Notebook", "Sketchbook", "Planner", "Journal"],
        "Office Supplies": ["Stapler", "Desk Organiser", "Label Maker", "Whiteboard"],
    },
    "Automotive": {
        "Car Electronics": ["Dash Cam", "Car Charger", "Phone Mount"],
        "Car Care": ["Car Vacuum", "Car Shampoo", "Microfibre Cloth"],
        "Car Accessories": ["Seat Cover", "Roof Box", "Floor Mats"],
    },
    "Jewellery & Accessories": {
        "Watches": ["Wristwatch", "Chronograph", "Dive Watch"],
        "Necklaces": ["Necklace", "Pendant"],
        "Rings": ["Ring", "Signet Ring"],
        "Earrings": ["Earrings", "Hoop Earrings", "Stud Earrings"],
        "Bags": ["Handbag", "Tote Bag", "Wallet", "Crossbody Bag"],
        "Sunglasses": ["Sunglasses", "Aviator Sunglasses"],
    },
}
"""Department -> subcategory -> either leaves (a third level) or the nouns of the
subcategory itself (then it is the leaf)."""

SIZED_DEPARTMENTS: dict[str, list[str]] = {
    "Clothing": ["XS", "S", "M", "L", "XL", "XXL"],
    "Shoes": ["36", "37", "38", "39", "40", "41", "42", "43", "44", "45", "46"],
}

PRICE_RANGES: dict[str, tuple[int, int]] = {
    "Electronics": (15, 2500),
    "Clothing": (8, 300),
    "Shoes": (20, 350),
    "Home & Kitchen": (6, 1800),
    "Beauty & Health": (4, 250),
    "Sports & Outdoors": (8, 3000),
    "Toys & Games": (5, 250),
    "Books & Media": (4, 80),
    "Garden & DIY": (5, 900),
    "Pets": (3, 300),
    "Food & Drink": (2, 60),
    "Office & Stationery": (2, 150),
    "Automotive": (8, 600),
    "Jewellery & Accessories": (10, 2000),
}
"""Department -> (lowest, highest) price in euros; prices are log-uniform between."""

CURRENCIES: list[tuple[str, int, float]] = [
    ("EUR", 80, 1.0),
    ("USD", 8, 1.08),
    ("GBP", 6, 0.86),
    ("CHF", 2, 0.95),
    ("SEK", 2, 11.5),
    ("PLN", 2, 4.3),
]
"""(currency, weight in percent, units per euro)."""

BRAND_STEMS = [
    "Aur", "Nord", "Kest", "Lum", "Bright", "Vant", "Sol", "Terra", "Zen", "Quill",
    "Mar", "Alto", "Vel", "Fjord", "Cor", "Oak", "Ember", "Nova", "Ori", "Silva",
    "Hal", "Briar", "Cobalt", "Delta", "Eko", "Fable", "Gran", "Iris", "Juno", "Kai",
]  # fmt: skip
BRAND_ENDINGS = ["a", "is", "ex", "ora", "wood", "line", "ion", "ford", "haven", "ic"]

ADJECTIVES = [
    "Classic", "Essential", "Premium", "Compact", "Vintage", "Modern", "Urban", "Nordic",
    "Everyday", "Signature", "Deluxe", "Original", "Heritage", "Minimal", "Elegant",
    "Rugged", "Lightweight", "Soft", "Sleek", "Bold", "Timeless", "Natural", "Coastal",
    "Alpine", "Studio", "Travel", "Comfort", "Performance", "Artisan", "Eco", "Retro",
    "Iconic", "Refined", "Smart", "Ultra", "Pure", "Cosy", "Luxe", "Active", "Hybrid",
    "Prime", "Select", "Superior", "Wireless", "Portable", "Foldable", "Organic",
    "Handmade", "Waterproof", "Recycled",
]  # fmt: skip

MODELS = ["Pro", "Lite", "Max", "Mini", "Plus", "II", "III", "X", "S", "Air", "One", "Go"]

COLOURS = [
    "black", "white", "grey", "navy", "blue", "sky blue", "green", "olive", "red",
    "burgundy", "pink", "purple", "yellow", "orange", "brown", "beige", "cream",
    "silver", "gold", "teal",
]  # fmt: skip

MATERIALS = [
    "cotton", "organic cotton", "linen", "wool", "merino wool", "polyester", "nylon",
    "leather", "vegan leather", "denim", "bamboo", "oak", "walnut", "pine", "steel",
    "stainless steel", "aluminium", "cast iron", "ceramic", "glass", "recycled plastic",
    "silicone", "rubber", "carbon fibre", "porcelain", "canvas", "cork", "brass",
]  # fmt: skip

FEATURES = [
    "Designed to last, with attention to every detail.",
    "Easy to clean and built for everyday use.",
    "Tested by our team for comfort and durability.",
    "A favourite with customers who value quality.",
    "Ships in plastic-free, recyclable packaging.",
    "Backed by a {warranty}-year warranty.",
    "Made in small batches in {country}.",
    "Pairs well with the rest of the {brand} range.",
    "Lightweight enough to take anywhere.",
    "Energy efficient and quiet in use.",
    "A thoughtful gift for friends and family.",
    "Finished by hand for a unique look.",
]

COUNTRIES = ["Portugal", "Italy", "Germany", "Sweden", "Poland", "Spain", "France", "Denmark"]

FIRST_NAMES = [
    "Ana", "Ben", "Chloé", "David", "Elif", "Farid", "Greta", "Hugo", "Ines", "Jonas",
    "Kaja", "Luca", "Maja", "Noah", "Olga", "Paul", "Rosa", "Sami", "Tomás", "Ula",
    "Vera", "Wim", "Yara", "Zoe",
]  # fmt: skip
LAST_NAMES = [
    "Silva", "Müller", "Rossi", "Nowak", "García", "Dubois", "Jensen", "Novák", "Kowalski",
    "Lindqvist", "Costa", "Schmidt", "Moreau", "Bianchi", "Hansen", "Fischer", "López",
    "Horvat", "Berg", "Weber",
]  # fmt: skip
SHOP_WORDS = ["Outfitters", "Supply", "Goods", "Trading", "House", "Market", "Co", "Studio"]

REVIEW_TITLES: dict[int, list[str]] = {
    5: ["Love it", "Excellent", "Exactly as described", "Best purchase this year", "Perfect"],
    4: ["Very good", "Happy with it", "Good value", "Nice quality", "Recommended"],
    3: ["It's okay", "Does the job", "Average", "Mixed feelings", "Fine for the price"],
    2: ["Disappointing", "Not great", "Expected more", "Cheaply made", "Meh"],
    1: ["Broke quickly", "Do not buy", "Very poor", "Returned it", "Not as described"],
}
REVIEW_BODIES: dict[int, list[str]] = {
    5: [
        "The {noun} arrived quickly and works perfectly. Would buy again.",
        "Great quality for the price; the {colour} looks even better in person.",
        "I have used it every day for a month and it still feels new.",
    ],
    4: [
        "Solid {noun}, a little smaller than I expected but well made.",
        "Good quality overall. Delivery took a few days longer than promised.",
        "Does what it should. The {material} feels nice.",
    ],
    3: [
        "It is fine, nothing special. The {colour} is darker than in the pictures.",
        "Works, but the finish could be better for this price.",
    ],
    2: [
        "The {noun} stopped working properly after a couple of weeks.",
        "Quality is lower than I hoped; the {material} feels thin.",
    ],
    1: [
        "Arrived damaged and customer service was slow to answer.",
        "Nothing like the description. I sent the {noun} back.",
    ],
}
SELLER_REPLIES = [
    "Thank you for your review! We are glad you like it.",
    "Thanks for the feedback. Please contact us and we will make it right.",
    "We appreciate you taking the time to write this review.",
]
